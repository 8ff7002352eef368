import numpy as np
import pytest
import torch

from mri_cyclegan.baselines import FOREGROUND, apply_lut, inverse_histogram_lut, knots
from mri_cyclegan.data.augment import random_flip_affine
from mri_cyclegan.data.preprocess import denormalize, fit_to_square, normalize, robust_range, unfit


def test_normalize_inverts_inside_window():
    x = np.linspace(100, 900, 50, dtype=np.float32)
    lo, hi = robust_range(x, (0, 100))
    y = normalize(x, lo, hi)
    assert y.min() == -1 and y.max() == 1
    np.testing.assert_allclose(denormalize(y, lo, hi), x, rtol=1e-5)


def test_robust_range_ignores_outliers():
    x = np.concatenate([np.linspace(0, 100, 10000), [1e6]])
    lo, hi = robust_range(x, (0.5, 99.5))
    assert hi < 101


@pytest.mark.parametrize("shape", [(181, 217), (217, 181), (30, 30), (7, 64)])
@pytest.mark.parametrize("size", [32, 96])
def test_fit_unfit_shapes(shape, size):
    x = np.random.default_rng(0).random(shape).astype(np.float32)
    sq, place = fit_to_square(x, size)
    assert sq.shape == (size, size) and max(place.resized) == size
    assert (sq == -1).sum() >= size * size - place.resized[0] * place.resized[1]
    back = unfit(sq, place)
    assert back.shape == shape


def test_fit_unfit_smooth_image_round_trip():
    y, x = np.mgrid[0:60, 0:80]
    img = np.sin(x / 15.0).astype(np.float32) * np.cos(y / 20.0)
    sq, place = fit_to_square(img, 64)
    np.testing.assert_allclose(unfit(sq, place), img, atol=0.05)


def test_inverse_histogram_lut_flips_order_and_matches():
    rng = np.random.default_rng(0)
    src = rng.uniform(-0.5, 0.9, 5000)
    tgt = rng.uniform(-0.2, 0.6, 5000)
    lut = inverse_histogram_lut(src, tgt)
    mapped = apply_lut(src, lut)
    assert np.all(np.diff(lut[knots() > FOREGROUND]) <= 1e-6)  # monotone decreasing on tissue
    assert lut[0] >= np.quantile(tgt, 0.99)  # no background in the source: its darkest values are its darkest tissue
    assert np.abs(np.diff(lut)).max() < 0.25  # continuous: no jump from black to the brightest tissue at the threshold
    assert abs(np.quantile(mapped, 0.9) - np.quantile(tgt, 0.9)) < 0.03
    assert np.corrcoef(src, mapped)[0, 1] < -0.99


def test_augment_deterministic_and_shape():
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    a = random_flip_affine(x, torch.Generator().manual_seed(1))
    b = random_flip_affine(x, torch.Generator().manual_seed(1))
    c = random_flip_affine(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    ident = random_flip_affine(x, torch.Generator(), flip=False, rotate_deg=0, scale=0, translate=0)
    torch.testing.assert_close(ident, x, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------- the invertible Preprocessor
from mri_cyclegan.config import DataConfig  # noqa: E402
from mri_cyclegan.data.preprocess import Preprocessor, context_windows  # noqa: E402
from mri_cyclegan.io.volume import Volume  # noqa: E402


def _oblique(spacing=(1.2, 1.0, 2.0)) -> np.ndarray:
    """Permuted, flipped axes: file axis 0 runs A->P, axis 1 L->R... (not canonical)."""
    sx, sy, sz = spacing
    return np.array([[0.0, -sy, 0.0, 90.0], [-sx, 0.0, 0.0, 100.0], [0.0, 0.0, sz, -50.0], [0, 0, 0, 1]])


def _smooth_volume(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = np.meshgrid(*[np.linspace(0, 1, n) for n in shape], indexing="ij")
    v = 500 + 300 * np.sin(3 * g[0] + rng.uniform()) * np.cos(2 * g[1]) + 100 * g[2]
    return v.astype(np.float32)


@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
def test_preprocessor_round_trip_is_exact_without_resampling(axis):
    vol = Volume(np.random.default_rng(1).random((13, 17, 11)).astype(np.float32) * 1000, _oblique())
    pre = Preprocessor(DataConfig(axis=axis), target_spacing=0.0)
    stack, geom = pre.forward(vol)
    back = pre.inverse(stack, geom)
    assert back.shape == vol.shape
    np.testing.assert_allclose(back, np.clip(vol.data, geom.lo, geom.hi), atol=1e-3)  # a shift by one voxel fails this
    assert np.abs(back - np.roll(vol.data, 1, axis=0)).max() > 100


def test_preprocessor_resamples_in_plane_by_physical_size():
    # 0.5 x 0.5 mm in-plane (file axes 0, 1 after reorientation), 3 mm slices, to a 1 mm target
    aff = np.diag([0.5, 0.5, 3.0, 1.0])
    vol = Volume(_smooth_volume((80, 60, 9)), aff)
    pre = Preprocessor(DataConfig(axis="axial"), target_spacing=1.0)
    assert pre.plane_spacing(vol) == (0.5, 0.5)
    stack, geom = pre.forward(vol)
    assert stack.shape == (9, 30, 40)  # 9 slices kept; rows run along y (60 * 0.5 mm), columns along x (80 * 0.5 mm)
    back = pre.inverse(stack, geom)
    assert back.shape == vol.shape
    inner = (slice(4, -4), slice(4, -4), slice(None))
    rel = np.abs(back - np.clip(vol.data, geom.lo, geom.hi))[inner].max() / np.ptp(vol.data)
    assert rel < 0.02  # smooth data survives 2x down- and upsampling
    # coronal slices of the same volume: rows run along z (3 mm), columns along x
    assert Preprocessor(DataConfig(axis="coronal"), 1.0).plane_spacing(vol) == (3.0, 0.5)


def test_preprocessor_2d_scale_and_fit():
    img = Volume(_smooth_volume((37, 45, 1))[..., 0])
    stack, geom = Preprocessor(DataConfig(image_scale=0.5)).forward(img)
    assert stack.shape == (1, 18, 22) and not geom.is_volume
    assert Preprocessor(DataConfig(image_scale=0.5)).inverse(stack, geom).shape == (37, 45)
    pre = Preprocessor(DataConfig(image_size=32))
    stack, geom = pre.forward(img)
    assert stack.shape == (1, 32, 32) and pre.inverse(stack, geom).shape == (37, 45)
    stack, geom = Preprocessor(DataConfig()).forward(img)  # native: the pixel grid is kept
    assert stack.shape == (1, 37, 45)
    with pytest.raises(ValueError, match="shape"):
        Preprocessor(DataConfig()).inverse(stack[:, :-1], geom)


def test_context_windows_repeat_the_ends():
    s = torch.arange(4.0)[:, None, None].expand(4, 2, 2)
    w = context_windows(s, 3)
    assert w.shape == (4, 3, 2, 2)
    assert w[:, :, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]
    assert context_windows(s, 1).shape == (4, 1, 2, 2)


def test_n4_removes_a_known_multiplicative_field():
    """Two tissues times a smooth field (0.7 -> 1.3 along one axis): after N4 each tissue is flat again, and the
    leftover follows the field far less than before (a field applied instead of removed would double it)."""
    pytest.importorskip("SimpleITK")
    from mri_cyclegan.data.preprocess import n4_correct

    i, j, k = np.meshgrid(*[np.linspace(-1, 1, n) for n in (48, 48, 24)], indexing="ij")
    head = (i / 0.9) ** 2 + (j / 0.9) ** 2 + (k / 0.95) ** 2 < 1
    tissue = np.where(head, np.where(np.abs(i) < 0.35, 600.0, 1000.0), 0.0)
    field = 1.0 + 0.3 * j  # 0.7 .. 1.3
    rng = np.random.default_rng(0)
    biased = (tissue * field + rng.normal(0, 5, tissue.shape) * head).astype(np.float32)
    corrected = n4_correct(biased, (1.0, 1.0, 1.0))

    def spread(x):  # within-tissue coefficient of variation, mean over the two tissues
        return np.mean([x[m].std() / x[m].mean() for m in (head & (tissue == 600), head & (tissue == 1000))])

    assert spread(corrected) < 0.5 * spread(biased)
    ratio = corrected[head] / tissue[head]
    assert abs(np.corrcoef(ratio, field[head])[0, 1]) < 0.5  # before: the ratio is the field (corr 1)
