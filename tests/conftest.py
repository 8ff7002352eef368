from __future__ import annotations

import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from phantoms import pair_2d, volume_pair  # noqa: E402

from mri_cyclegan.config import Config  # noqa: E402

# Under pytest-xdist (`pytest -n 2`, the README's command) each of the two workers gets one core: two processes
# with two threads each on 2 cores oversubscribe (a training step once ran 20x slower). Alone: both cores.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)

TINY = {
    "data.patch_size": 32,
    "model.ngf": 4,
    "model.n_blocks": 1,
    "model.ndf": 8,
    "train.batch_size": 2,
    "train.epochs": 2,
    "train.epochs_decay": 1,
    "train.iters_per_epoch": 2,
    "train.n_samples": 2,
    "train.device": "cpu",
    "train.precision": "fp32",
}


@pytest.fixture
def tiny_config() -> Config:
    return Config().replace(**TINY)


TRAIN_FLAGS = [
    "--patch-size", "32", "--ngf", "4", "--n-blocks", "1", "--ndf", "8", "--batch-size", "2",
    "--epochs", "1", "--epochs-decay", "0", "--iters-per-epoch", "2", "--device", "cpu", "--precision", "fp32",
]  # fmt: skip


def make_image_folders(root: Path) -> tuple[Path, Path]:
    """Unpaired folders: 5 8-bit T1 PNGs of two orientations, 6 16-bit T2 PNGs."""
    t1, t2 = root / "t1", root / "t2"
    t1.mkdir(parents=True)
    t2.mkdir()
    for i in range(5):
        a, _ = pair_2d((48, 40) if i % 2 else (40, 48), seed=i)
        Image.fromarray(np.clip(a / 1000 * 255, 0, 255).astype(np.uint8)).save(t1 / f"t1_{i}.png")
    for i in range(6):
        _, b = pair_2d((44, 44), seed=50 + i)
        Image.fromarray(np.clip(b * 50, 0, 65535).astype(np.uint16)).save(t2 / f"t2_{i}.png")
    return t1, t2


@pytest.fixture
def image_folders(tmp_path: Path) -> tuple[Path, Path]:
    return make_image_folders(tmp_path)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """One tiny run trained through the CLI, shared by every test that only reads it."""
    from mri_cyclegan.cli import main

    root = tmp_path_factory.mktemp("shared_run")
    t1, t2 = make_image_folders(root / "data")
    out = root / "run"
    assert main(["train", "--t1", str(t1), "--t2", str(t2), "--out", str(out), "--quiet", *TRAIN_FLAGS]) == 0
    return out


def oblique_affine() -> np.ndarray:
    """A LPS-ish, permuted, anisotropic affine: not canonical."""
    aff = np.array([[0.0, -1.2, 0.0, 90.0], [-1.0, 0.0, 0.0, 100.0], [0.0, 0.0, 2.0, -50.0], [0, 0, 0, 1]])
    return aff


@pytest.fixture
def nifti_pair(tmp_path: Path) -> tuple[Path, Path]:
    a, b = volume_pair((36, 30, 12), seed=3)
    aff = oblique_affine()
    p1, p2 = tmp_path / "t1.nii.gz", tmp_path / "t2.nii.gz"
    img = nib.Nifti1Image(a.astype(np.int16), aff)
    img.header["descrip"] = b"phantom t1"
    nib.save(img, p1)
    nib.save(nib.Nifti1Image(b.astype(np.float32), aff), p2)
    return p1, p2
