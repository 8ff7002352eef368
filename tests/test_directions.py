"""One name per concept: the Direction and Contrast enums replace string slicing everywhere."""

from __future__ import annotations

import pytest

from mri_cyclegan.directions import DIRECTIONS, Contrast, Direction


def test_direction_parts_and_aliases():
    d = Direction.parse("T1-to-T2")
    assert d is Direction.T1_TO_T2 and d == "t1_to_t2" and f"{d}" == "t1_to_t2"  # the keys of metrics.json / val.csv
    assert (d.source, d.target, d.reverse) == (Contrast.T1, Contrast.T2, Direction.T2_TO_T1)
    assert (Direction.T2_TO_T1.source, Direction.T2_TO_T1.target) == (Contrast.T2, Contrast.T1)
    assert Direction.T2_TO_T1.reverse.reverse is Direction.T2_TO_T1
    assert Direction.between("t2", Contrast.T1) is Direction.T2_TO_T1
    assert (Contrast.T1.bids_suffix, Contrast.T2.bids_suffix) == ("T1w", "T2w") and d.label == "T1 → T2"
    assert DIRECTIONS == (Direction.T1_TO_T2, Direction.T2_TO_T1)
    with pytest.raises(ValueError, match="t1_to_t2"):
        Direction.parse("t1_to_flair")


def test_the_model_picks_the_generator_by_direction(tiny_config):
    from mri_cyclegan.models import CycleGAN

    m = CycleGAN.from_config(tiny_config)
    assert m.generator("t1-to-t2") is m.g_t1_to_t2 and m.generator(Direction.T2_TO_T1) is m.g_t2_to_t1
    with pytest.raises(ValueError):
        m.generator("t2")


def test_the_cli_offers_exactly_the_directions(run_dir, tmp_path, capsys):
    from mri_cyclegan.cli import main

    with pytest.raises(SystemExit) as e:
        main(["translate", "--model", str(run_dir), "--direction", "t1-to-flair", str(tmp_path), str(tmp_path / "o")])
    assert e.value.code == 2 and "t1-to-t2" in capsys.readouterr().err
