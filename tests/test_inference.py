"""Translation geometry: with an identity generator, every path must give back the input on its own grid."""

import nibabel as nib
import numpy as np
import pytest
import torch

from mri_cyclegan.baselines import knots
from mri_cyclegan.config import Config
from mri_cyclegan.inference import Translator
from mri_cyclegan.translate_files import translate_path
from mri_cyclegan.io.volume import Volume
from mri_cyclegan.models import CycleGAN
from tests.conftest import oblique_affine


def identity_translator(**overrides) -> Translator:
    """A model whose generators are exactly the identity: prior LUT = identity, residual starts at zero."""
    cfg = Config().replace(**{"model.ngf": 4, "model.n_blocks": 1, "model.ndf": 8, **overrides})
    model = CycleGAN.from_config(cfg)
    model.set_priors(knots(), knots())
    return Translator(model, cfg, device="cpu")


def _volume(shape, affine, seed=0):
    g = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    data = 400 + 300 * np.sin(4 * g[0] + seed) * np.cos(3 * g[1]) + 200 * g[2]
    data[: shape[0] // 6] = 0  # some background
    return Volume(data.astype(np.float32), affine)


@pytest.mark.parametrize("k", [1, 3])
def test_identity_translation_returns_the_input_grid(k):
    tr = identity_translator(**{"data.context_slices": k})
    vol = _volume((37, 30, 11), oblique_affine())  # oblique, permuted, 1.2 x 1.0 x 2.0 mm; sides not multiples of 4
    out = tr.translate_volume(vol, "t1_to_t2")
    assert out.shape == vol.shape and np.array_equal(out.affine, vol.affine)
    stack, geom = tr.preprocessor.forward(vol)
    np.testing.assert_allclose(out.data, np.clip(vol.data, geom.lo, geom.hi), atol=1e-2)  # off by one voxel fails
    assert np.abs(out.data - np.roll(vol.data, 1, axis=1)).max() > 50


def test_identity_translation_with_resampling_and_tiles():
    tr = identity_translator(**{"data.spacing": 1.5})
    tr.max_pixels = 8 * 8  # force the tiled path
    vol = _volume((48, 40, 6), np.diag([1.0, 1.0, 3.0, 1.0]))
    stack, _ = tr.preprocessor.forward(vol)
    assert stack.shape == (6, 27, 32)  # 40 mm / 1.5 and 48 mm / 1.5, rows along y
    out = tr.translate_volume(vol, "t2_to_t1")
    assert out.shape == vol.shape
    inner = (slice(10, -3), slice(3, -3), slice(None))
    assert np.abs(out.data - vol.data)[inner].max() < 0.05 * np.ptp(vol.data)


def test_translate_path_writes_native_size_nifti_and_png(tmp_path):
    from PIL import Image

    tr = identity_translator()
    vol = _volume((25, 31, 5), oblique_affine())
    src = tmp_path / "in.nii.gz"
    img = nib.Nifti1Image(vol.data.astype(np.int16), vol.affine)
    img.header["descrip"] = b"source"
    nib.save(img, src)
    (dst,) = translate_path(tr, src, tmp_path / "out.nii.gz", "t1_to_t2", progress=False)
    back = nib.load(dst)
    assert back.shape == (25, 31, 5) and back.get_data_dtype() == np.int16 and np.allclose(back.affine, vol.affine)
    assert back.header["descrip"].tobytes().startswith(b"source")
    _, geom = tr.preprocessor.forward(Volume(np.asarray(img.dataobj, np.float32), vol.affine))
    assert np.abs(back.get_fdata() - np.clip(np.asarray(img.dataobj), geom.lo, geom.hi)).max() <= 1.0  # rounding only
    png = (np.linspace(6000, 60000, 181 * 217).reshape(181, 217)).astype(np.uint16)  # signal everywhere (no air)
    Image.fromarray(png).save(tmp_path / "s.png")
    (out,) = translate_path(tr, tmp_path / "s.png", tmp_path / "o.png", "t1_to_t2", progress=False)
    arr = np.array(Image.open(out))
    assert arr.shape == (181, 217) and arr.dtype == np.uint16
    inner = (slice(3, -3), slice(3, -3))
    assert np.abs(arr.astype(float) - png)[inner].max() < 0.01 * 60000  # native grid: no blur from a 96² detour


def test_channels_follow_context():
    tr = identity_translator(**{"data.context_slices": 5})
    assert tr.model.g_t1_to_t2.backbone.net[1].in_channels == 5
    x = torch.zeros(1, 5, 32, 32)
    assert tr.model.d_t1(x).shape[1] == 1


@pytest.mark.parametrize("context", [1, 3])
def test_translate_stacks_batches_across_files_with_the_same_results(context):
    """Same-size slices of several files share forward passes; every file's result equals its own translation."""
    cfg = Config().replace(**{"data.context_slices": context, "model.ngf": 4, "model.n_blocks": 1, "model.prior": "none"})
    tr = Translator(CycleGAN.from_config(cfg, seed=1), cfg, device="cpu")
    rng = np.random.default_rng(0)
    stacks = [rng.uniform(-1, 1, shape).astype(np.float32) for shape in [(1, 40, 48), (5, 40, 48), (1, 44, 44), (1, 40, 48), (2, 44, 44)]]
    singles = [tr.translate_stack(s, "t1_to_t2") for s in stacks]
    calls = []
    forward = tr._forward
    tr._forward = lambda x, d: (calls.append(tuple(x.shape)), forward(x, d))[1]
    together = tr.translate_stacks(stacks, "t1_to_t2")
    assert sorted(c[0] for c in calls) == [3, 7]  # two passes: 1 + 5 + 1 slices of 40x48, 1 + 2 of 44x44
    for a, b in zip(singles, together):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_context_fusion_averages_each_slice_over_the_windows_that_hold_it():
    """Window w's channel k predicts slice w - r + k; each slice's fused value is the mean over the windows holding
    it. A nonlinear stack and channel-dependent offsets: the centre channel alone, or a wrong channel index, fails."""
    tr = identity_translator(**{"data.context_slices": 3})
    d, r = 9, 1
    base = torch.arange(d, dtype=torch.float32) ** 2  # nonlinear through-plane
    offsets = torch.tensor([0.0, 0.0, 0.3])
    preds = torch.zeros(d, 3, 2, 2)
    for w in range(d):
        for k in range(3):
            z = min(max(w - r + k, 0), d - 1)  # context_windows repeats the end slices
            preds[w, k] = base[z] + offsets[k]
    fused = tr._fuse(preds)[:, 0, 0]
    expected = [float(base[z]) + float(np.mean([offsets[r - j] for j in (-1, 0, 1) if 0 <= z + j < d])) for z in range(d)]
    np.testing.assert_allclose(fused, expected, atol=1e-5)
    tr.average_context = False
    np.testing.assert_allclose(tr._fuse(preds)[:, 0, 0], base.numpy(), atol=1e-5)  # the centre channel only


def test_each_direction_uses_its_own_generator(tmp_path):
    """t1-to-t2 runs g_t1_to_t2 (here the identity table) and t2-to-t1 runs g_t2_to_t1 (an inverting table)."""
    cfg = Config().replace(**{"model.ngf": 4, "model.n_blocks": 1, "model.ndf": 8})
    model = CycleGAN.from_config(cfg)
    model.set_priors(knots(), -knots())
    tr = Translator(model, cfg, device="cpu")
    vol = _volume((20, 18, 5), np.eye(4))
    fwd, back = tr.translate(vol, "t1-to-t2"), tr.translate(vol, "t2_to_t1")
    fg = vol.data > 0
    assert np.corrcoef(fwd[fg], vol.data[fg])[0, 1] > 0.99 and np.corrcoef(back[fg], vol.data[fg])[0, 1] < -0.99


def test_anisotropic_permuted_spacing_round_trip_with_resampling():
    """In-plane 0.7 x 1.3 mm with permuted axes, resampled to 1 mm and back: the identity comes back on the input's
    grid (a transposed or flipped plane, or the spacings swapped, does not)."""
    tr = identity_translator(**{"data.spacing": 1.0})
    aff = np.array([[0.0, 1.3, 0.0, -20.0], [0.7, 0.0, 0.0, 10.0], [0.0, 0.0, 2.5, 5.0], [0, 0, 0, 1]])
    shape = (50, 30, 6)
    i, j, k = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    data = 300 + 150 * np.sin(i * 0.7 / 9.0) * np.cos(j * 1.3 / 11.0) + 10 * k  # smooth in millimetres
    data[:4] = 0
    vol = Volume(data.astype(np.float32), aff)
    stack, _ = tr.preprocessor.forward(vol)
    assert stack.shape[1:] in ((35, 39), (39, 35))  # 50 x 0.7 mm and 30 x 1.3 mm at 1 mm
    out = tr.translate(vol, "t1_to_t2")
    assert out.shape == shape
    inner = (slice(8, -3), slice(3, -3), slice(None))
    assert np.abs(out - data)[inner].max() < 0.03 * np.ptp(data)


def test_the_translator_leaves_the_model_mode_as_it_found_it():
    """A model being trained stays in training mode after a translator used it (validation needs no undo), and the
    translation is the eval-mode one (the output calibration is applied)."""
    tr = identity_translator()
    model = tr.model
    model.g_t1_to_t2.calibration.lut.copy_(torch.linspace(-1, 1, model.g_t1_to_t2.calibration.lut.numel()) ** 3)  # visible
    vol = _volume((20, 18, 4), np.eye(4))
    model.train()
    in_training = tr.translate(vol, "t1_to_t2")
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    np.testing.assert_array_equal(in_training, tr.translate(vol, "t1_to_t2"))
    assert not any(m.training for m in model.modules())


@pytest.mark.parametrize("outline", ["unmix", "table"])
def test_evaluate_baseline_is_the_untrained_model(outline):
    """The report's lookup-table baseline and the untrained model are one thing, outline unmixing included."""
    from mri_cyclegan.inference import baseline_translation

    cfg = Config().replace(**{"model.ngf": 4, "model.n_blocks": 1, "model.ndf": 8, "model.outline": outline})
    model = CycleGAN.from_config(cfg)
    lut = np.where(knots() > -0.9, -0.8 * knots(), knots()).astype(np.float32)  # inverts tissue, keeps background
    model.set_priors(lut, lut)
    tr = Translator(model, cfg, device="cpu")
    data = np.zeros((30, 28, 3), np.float32)
    data[5:25, 4:24] = 900.0  # a bright rim ...
    data[8:22, 7:21] = 400.0  # ... around darker tissue
    data[5:25, 4] = data[5:25, 23] = 450.0  # the outline half background
    vol = Volume(data, np.diag([1.0, 1.0, 2.0, 1.0]))
    base = baseline_translation(vol, lut, tr.preprocessor, unmix_outline=outline == "unmix")
    out = tr.translate_volume(vol, "t1_to_t2").data
    np.testing.assert_allclose(base, out, atol=1e-3 * data.max())
    np.testing.assert_array_equal(tr.table_translation(vol, "t1_to_t2"), base)  # the model's own table, its outline rule
    pointwise = baseline_translation(vol, lut, tr.preprocessor, unmix_outline=False)
    assert (np.abs(base - pointwise).max() > 100) == (outline == "unmix")  # the outline column differs


def test_tissue_cut_by_the_image_border_is_not_an_outline():
    """A brain cut by the field of view: the model pads slices to its size multiple, and padding with background
    made the tissue at the bottom/right border an outline, which the prior then unmixed (darkened). Padding
    replicates the border instead: the untrained model equals the lookup table there, as at the top/left border."""
    from mri_cyclegan.inference import baseline_translation

    cfg = Config().replace(**{"model.ngf": 4, "model.n_blocks": 1, "model.ndf": 8})
    model = CycleGAN.from_config(cfg)
    lut = np.where(knots() > -0.9, -0.8 * knots(), knots()).astype(np.float32)
    model.set_priors(lut, lut)
    tr = Translator(model, cfg, device="cpu")
    assert model.size_multiple > 1
    x, y = np.meshgrid(np.linspace(0, 1, 30), np.linspace(0, 1, 29), indexing="ij")
    data = np.repeat((900 - 500 * x * y)[..., None], 3, 2).astype(np.float32)  # tissue everywhere, darker at one corner
    vol = Volume(data, np.diag([1.0, 1.0, 2.0, 1.0]))  # 30 x 29: neither side a multiple of the model's
    base = baseline_translation(vol, lut, tr.preprocessor)
    out = tr.translate_volume(vol, "t1_to_t2").data
    np.testing.assert_allclose(out, base, atol=1e-3 * data.max())
