"""The run-folder layout: one object names every file a run writes; --overwrite removes exactly those."""

from __future__ import annotations

from mri_cyclegan.run_folder import RunLayout, holds_run, prepare_run_folder


def test_overwrite_removes_every_file_of_the_old_run_and_nothing_else(tmp_path):
    layout = RunLayout(tmp_path)
    for name in RunLayout.FILES:
        layout[name].write_text("old")
    for name in RunLayout.DIRS:
        layout[name].mkdir()
        (layout[name] / "old.bin").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    assert {RunLayout.VAL_CSV, RunLayout.VAL_PNG, RunLayout.MODEL_CARD} <= set(RunLayout.FILES) and RunLayout.TENSORBOARD in RunLayout.DIRS
    prepare_run_folder(tmp_path, resume=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert not holds_run(tmp_path)


def test_a_run_with_only_validation_or_tensorboard_files_is_still_a_run(tmp_path):
    (tmp_path / "tensorboard").mkdir()
    assert holds_run(tmp_path)


def test_a_refused_start_leaves_no_run_in_the_way(tmp_path, image_folders, capsys):
    """A start refused while reading its inputs (a corrupt file) leaves only train.log; fixing the input and starting
    again needs no --overwrite, and the new run's log is appended to it."""
    from mri_cyclegan.cli import main

    from tests.conftest import TRAIN_FLAGS

    bad = image_folders[0] / "zz.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    args = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(tmp_path / "run"), "--quiet", *TRAIN_FLAGS]
    assert main(args) == 2
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["train.log"] and not holds_run(tmp_path / "run")
    first = (tmp_path / "run" / "train.log").read_text()
    bad.unlink()
    assert main(args) == 0
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.startswith(first) and "epoch 1" in log[len(first):] and holds_run(tmp_path / "run")


def test_checkpoint_paths_and_their_run(tmp_path):
    layout = RunLayout(tmp_path)
    assert layout.checkpoint() == tmp_path / "checkpoints" / "last.safetensors"
    assert layout.sample(3) == tmp_path / "samples" / "epoch_003.png"
    assert RunLayout.of_checkpoint(layout.checkpoint("best")) is None  # no config.json: not a run
    layout[RunLayout.CONFIG].write_text("{}")
    assert RunLayout.of_checkpoint(layout.checkpoint("best")).root == tmp_path
    assert RunLayout.of_checkpoint(tmp_path / "elsewhere" / "x.safetensors") is None
