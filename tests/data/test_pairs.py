"""Co-registered T1/T2 pairs for semi-supervised training: matched by name, one grid per pair, patches at one place."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mri_cyclegan.config import Config
from mri_cyclegan.data.dataset import PairedBatches, load_pairs, paired_files
from mri_cyclegan.errors import InputError

from tests.phantoms import pair_2d


def make_paired_folders(root: Path, shapes=((44, 52), (52, 44), (48, 48))) -> tuple[Path, Path]:
    """Co-registered T1/T2 PNGs of the same phantoms, named alike (8-bit T1, 16-bit T2: each its own intensity scale)."""
    t1, t2 = root / "paired_t1", root / "paired_t2"
    t1.mkdir(parents=True)
    t2.mkdir()
    for i, shape in enumerate(shapes):
        a, b = pair_2d(shape, seed=100 + i)
        Image.fromarray(np.clip(a / 1000 * 255, 0, 255).astype(np.uint8)).save(t1 / f"sub{i}_T1w.png")
        Image.fromarray(np.clip(b * 50, 0, 65535).astype(np.uint16)).save(t2 / f"sub{i}_T2w.png")
    return t1, t2


def test_pairs_are_matched_by_name_on_one_grid(tmp_path):
    t1, t2 = make_paired_folders(tmp_path)
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(t2 / "unmatched.png")  # no T1 of that name: left out
    pairs = load_pairs(paired_files(t1, t2), Config().data)
    assert len(pairs) == 3
    for s1, s2 in zip(pairs.t1.stacks, pairs.t2.stacks):
        assert s1.name.split("_")[0] == s2.name.split("_")[0] and s1.data.shape == s2.data.shape


def test_pairs_on_different_grids_are_refused_naming_both_files(tmp_path):
    t1, t2 = make_paired_folders(tmp_path)
    Image.fromarray(np.full((40, 40), 9, np.uint16)).save(t2 / "sub1_T2w.png")  # same name, other size
    with pytest.raises(InputError, match=r"sub1_T1w.png .* sub1_T2w.png .*one voxel grid"):
        paired_files(t1, t2)


def test_no_name_in_common_is_refused(tmp_path):
    t1, t2 = make_paired_folders(tmp_path)
    for f in t2.iterdir():
        f.rename(t2 / f"other_{f.name}")
    with pytest.raises(InputError, match="no --paired-t1 file matches a --paired-t2 file"):
        paired_files(t1, t2)


def test_paired_patches_show_the_same_place_in_both_contrasts(tmp_path):
    """Patch position and augmentation (flip, rotation, scale, shift) are shared by the two contrasts of a pair: the
    head outlines coincide. Drawn independently they would not."""
    t1, t2 = make_paired_folders(tmp_path)
    cfg = Config().data.__class__(**{**Config().data.__dict__, "rotate_deg": 20.0, "scale": 0.1, "translate": 0.1})
    batches = PairedBatches(load_pairs(paired_files(t1, t2), cfg), cfg, (32, 32), batch_size=8, seed=0)
    for _ in range(3):
        a, b = batches.next()
        assert a.shape == b.shape == (8, 1, 32, 32)
        fa, fb = a > -0.95, b > -0.95
        assert fa.float().mean() > 0.3
        agree = (fa == fb).float().mean(dim=(1, 2, 3))
        assert agree.min() > 0.97, agree
    state = batches.state_dict()
    first = batches.next()
    batches.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(first, batches.next()))  # the sampler resumes where it was
