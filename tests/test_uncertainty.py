"""Uncertainty maps: the estimator points where members disagree, in the output's units, and every writer writes it."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from mri_cyclegan.baselines import knots
from mri_cyclegan.config import Config
from mri_cyclegan.inference import Translator
from mri_cyclegan.uncertainty import uncertainty_path
from mri_cyclegan.io.volume import Volume
from mri_cyclegan.models import CycleGAN
from mri_cyclegan.uncertainty import DEFAULT_MEMBERS, Member, gain, parse_members, spread
from tests.conftest import oblique_affine


def test_spread_is_zero_where_members_agree_and_grows_with_their_disagreement():
    pred = torch.zeros(1, 4)
    members = [torch.tensor([[0.0, 0.1, 0.2, -0.4]]), torch.tensor([[0.0, -0.1, 0.2, 0.4]])]
    u = spread(pred, members)
    np.testing.assert_allclose(u.numpy(), [[0.0, 0.1, 0.2, 0.4]], atol=1e-7)  # RMS distance from the translation


def test_spread_weights_members_and_the_default_weights_follow_the_members():
    from mri_cyclegan.uncertainty import member_weights

    pred = torch.zeros(1, 2)
    members = [torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])]
    np.testing.assert_allclose(spread(pred, members, [1.0, 0.25]).numpy(), [[np.sqrt(1 / 1.25), np.sqrt(0.25 / 1.25)]], rtol=1e-6)
    assert member_weights((Member.PRIOR, Member.FLIP, Member.EDGE)) == [1.0, 1.0, 0.1, 0.1]  # edge gives two members
    with pytest.raises(ValueError):
        spread(pred, members, [1.0])


def test_gain_scales_about_the_background_and_stays_in_the_window():
    x = torch.tensor([-1.0, 0.0, 0.98])
    np.testing.assert_allclose(gain(x, 0.05).numpy(), [-1.0, 0.05, 1.0], atol=1e-6)


def test_members_parse_and_unknown_names_are_refused():
    assert parse_members("flip, gain") == (Member.FLIP, Member.GAIN)
    with pytest.raises(ValueError, match="'mirror'"):
        parse_members("flip,mirror")


class ColumnRamp(nn.Module):
    """A residual that depends on the absolute column, not on the image: (col / W)^2 on every channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.shape[-1]
        ramp = (torch.arange(w, dtype=x.dtype) / (w - 1)) ** 2
        return 0.5 * ramp.expand_as(x)


def ramp_translator() -> Translator:
    cfg = Config().replace(**{"model.ngf": 4, "model.n_blocks": 1, "model.ndf": 8, "model.residual_bound": 0.0})  # the ramp is the residual
    model = CycleGAN.from_config(cfg)
    model.set_priors(knots(), knots())
    model.g_t1_to_t2.backbone = ColumnRamp()
    return Translator(model, cfg, device="cpu")


def test_the_map_is_high_where_flipped_predictions_disagree_and_low_where_they_agree():
    tr = ramp_translator()
    img = np.full((40, 64), 150.0, np.float32)  # mid-window: the ramp never reaches the clamp at 1
    img[:, :2] = 0  # the window's floor and ceiling
    img[:3] = 300
    stack, geom = tr.preprocessor.forward(Volume(img))
    pred, unc = tr.translate_with_uncertainty(Volume(img), "t1_to_t2", (Member.FLIP,))
    assert unc.shape == img.shape and unc.dtype == np.float32 and (unc >= 0).all()
    cols = unc[10:30].mean(0)
    # the flipped prediction carries the ramp mirrored: members agree in the middle, disagree most at the sides
    assert cols[28:36].mean() < 0.1 * cols[-6:].mean()
    assert cols[2:8].mean() > 5 * cols[28:36].mean()
    # in the output's units: 0.5 * (ramp(c) - ramp(W - 1 - c)) model units at the edges, times half the window
    expected_edge = 0.5 * 1.0 * (geom.hi - geom.lo) / 2
    assert cols[-1] == pytest.approx(expected_edge, rel=0.1)
    # the translation itself is what translate() gives, untouched by asking for the map
    np.testing.assert_array_equal(pred, tr.translate(Volume(img), "t1_to_t2"))


def test_the_map_scales_with_the_input_intensities():
    tr = ramp_translator()
    rng = np.random.default_rng(0)
    img = (200 + 100 * rng.random((32, 48))).astype(np.float32)
    img[:, :3] = 0
    _, u1 = tr.translate_with_uncertainty(Volume(img), "t1_to_t2", DEFAULT_MEMBERS)
    _, u10 = tr.translate_with_uncertainty(Volume(img * 10), "t1_to_t2", DEFAULT_MEMBERS)
    np.testing.assert_allclose(u10, 10 * u1, rtol=1e-3, atol=1e-3)
    assert np.ptp(u1) > 0


def test_uncertainty_names():
    from pathlib import Path

    assert uncertainty_path(Path("o/fake.nii.gz")) == Path("o/fake_uncertainty.nii.gz")
    assert uncertainty_path(Path("o/fake.MHD")) == Path("o/fake_uncertainty.MHD")
    assert uncertainty_path(Path("o/slice.png")) == Path("o/slice_uncertainty.tif")
    assert uncertainty_path(Path("o/3_t1_synthetic")) == Path("o/3_t1_synthetic_uncertainty.nii.gz")


def _read_volume(path):
    from mri_cyclegan.io import read_any

    return read_any(path)


@pytest.mark.parametrize("ext", [".nii.gz", ".mgz", ".nrrd", ".mha", ".mhd"])
def test_translate_uncertainty_writes_the_map_in_every_volume_format(tmp_path, run_dir, ext):
    pytest.importorskip("SimpleITK") if ext in (".nrrd", ".mha", ".mhd") else None
    from mri_cyclegan.cli import main
    from mri_cyclegan.io import write_volume

    rng = np.random.default_rng(1)
    data = np.zeros((30, 26, 7), np.float32)
    data[4:-4, 3:-3] = 300 + 200 * rng.random((22, 20, 7))
    src = tmp_path / f"t1{ext}"
    write_volume(src, Volume(data, oblique_affine()))
    out = tmp_path / "out" / f"fake{ext}"
    args = ["translate", "--model", str(run_dir), "--direction", "t1-to-t2", "--quiet", "--uncertainty", str(src), str(out)]
    assert main(args) == 0
    umap = _read_volume(uncertainty_path(out))
    fake = _read_volume(out)
    assert umap.shape == fake.shape == data.shape
    np.testing.assert_allclose(umap.affine, fake.affine, atol=1e-5)
    assert umap.data.dtype == np.float32
    # voxel for voxel what the translator computes in memory (a flipped or transposed writer fails)
    tr = Translator.from_checkpoint(run_dir / "checkpoints" / "last.safetensors", device="cpu")
    _, expected = tr.translate_with_uncertainty(_read_volume(src), "t1_to_t2")
    np.testing.assert_allclose(umap.data, expected, rtol=1e-4, atol=1e-4)
    assert np.ptp(expected) > 0
    assert main(args) == 2  # the map is never replaced without --overwrite
    assert main([*args, "--overwrite"]) == 0


def test_translate_uncertainty_for_images_and_dicom(tmp_path, run_dir):
    from PIL import Image

    from mri_cyclegan.cli import main

    pngs = tmp_path / "pngs"
    pngs.mkdir()
    rng = np.random.default_rng(2)
    img = np.zeros((40, 36), np.uint8)
    img[5:-5, 5:-5] = 80 + rng.integers(0, 150, (30, 26))
    Image.fromarray(img).save(pngs / "a.png")
    out = tmp_path / "out"
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", "--quiet", "--uncertainty", str(pngs), str(out)]) == 0
    u = np.asarray(Image.open(out / "a_uncertainty.tif"))
    assert u.shape == img.shape and u.dtype == np.float32 and np.ptp(u) > 0
    assert np.asarray(Image.open(out / "a.png")).dtype == np.uint8  # the translation keeps its bit depth

    from tests.io.test_formats import phantom, write_series

    write_series(tmp_path / "dicom" / "exam", phantom(), "oblique", description="t1")
    out_dcm = tmp_path / "out_dcm"
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", "--quiet", "--uncertainty", "--dicom-out",
                 str(tmp_path / "dicom"), str(out_dcm)]) == 0
    series = next(p for p in (out_dcm / "exam").iterdir() if p.is_dir())
    umap = nib.load(str(uncertainty_path(series)))
    assert umap.shape == phantom().shape and np.ptp(np.asarray(umap.dataobj)) > 0
