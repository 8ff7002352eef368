import numpy as np
import pytest
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from mri_cyclegan.metrics import foreground_mask, image_scores, mae, psnr, ssim


@pytest.mark.parametrize("shape", [(32, 32), (40, 57), (96, 77)])
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_against_skimage(shape, data_range):
    rng = np.random.default_rng(shape[0])
    ref = rng.random(shape) * data_range
    pred = np.clip(ref + rng.normal(0, 0.1 * data_range, shape), 0, data_range)
    want = structural_similarity(pred, ref, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim(pred, ref, data_range) == pytest.approx(want, abs=1e-10)
    assert psnr(pred, ref, data_range) == pytest.approx(peak_signal_noise_ratio(ref, pred, data_range=data_range), abs=1e-10)


def test_known_answers():
    ref = np.zeros((20, 20))
    pred = ref + 0.1
    assert psnr(pred, ref, 1.0) == pytest.approx(20.0)
    assert mae(pred, ref, 1.0) == pytest.approx(0.1)
    assert ssim(ref + 0.5, ref + 0.5, 1.0) == pytest.approx(1.0)
    assert psnr(ref, ref, 1.0) == float("inf")


def test_mask_restricts_to_brain():
    ref = np.zeros((30, 30))
    pred = ref.copy()
    mask = np.zeros_like(ref, bool)
    mask[10:20, 10:20] = True
    pred[~mask] = 1.0  # errors only outside the mask
    assert psnr(pred, ref, 1.0, mask) == float("inf")
    assert mae(pred, ref, 1.0, mask) == 0
    pred[mask] = 0.2
    assert mae(pred, ref, 1.0, mask) == pytest.approx(0.2)
    assert psnr(pred, ref, 1.0, mask) == pytest.approx(10 * np.log10(1 / 0.04))
    assert mean_squared_error(pred[mask], ref[mask]) == pytest.approx(0.04)


def test_errors_and_auto_mask():
    with pytest.raises(ValueError):
        psnr(np.zeros((3, 3)), np.zeros((3, 4)), 1.0)
    with pytest.raises(ValueError):
        psnr(np.zeros((3, 3)), np.zeros((3, 3)), 1.0, np.zeros((3, 3), bool))
    img = np.zeros((40, 40))
    img[10:30, 10:30] = 1.0
    m = foreground_mask(img)
    assert m[20, 20] and not m[2, 2] and 390 <= m.sum() <= 400  # the opening rounds the corners
    assert set(image_scores(img, img)) == {"psnr", "ssim", "mae"}


def test_through_plane_sees_striping():
    from mri_cyclegan.metrics import through_plane

    g = np.meshgrid(*[np.linspace(0, 1, n) for n in (30, 30, 20)], indexing="ij")
    ref = 0.5 + 0.3 * np.sin(5 * g[0]) * np.cos(4 * g[1]) + 0.1 * g[2]
    assert through_plane(ref, ref, 2)["tp_error"] == 0
    offsets = np.random.default_rng(0).normal(0, 0.03, 20)
    striped = ref + offsets[None, None, :]  # independent per-slice errors, as slice-by-slice translation makes
    smooth = ref + 0.03 * np.linspace(-1, 1, 20)[None, None, :]  # the same error size, varying smoothly
    tp_striped, tp_smooth = through_plane(striped, ref, 2), through_plane(smooth, ref, 2)
    assert tp_striped["tp_ratio"] > 5 * tp_smooth["tp_ratio"]
    assert through_plane(striped, ref, 0)["tp_error"] < 1e-9  # along another axis the stripes are invisible


def test_ssim_3d_matches_skimage():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.random((24, 20, 18))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    want = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert abs(ssim(a, b, 1.0) - want) < 1e-8


def test_auroc_equals_scikit_learn_with_ties():
    sk = pytest.importorskip("sklearn.metrics")
    from mri_cyclegan.metrics import auroc

    rng = np.random.default_rng(0)
    labels = rng.random(500) < 0.3
    scores = np.round(labels * 0.4 + rng.random(500), 1)  # informative, with many ties
    assert auroc(scores, labels) == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)
    assert auroc(-scores, labels) == pytest.approx(1 - sk.roc_auc_score(labels, scores), abs=1e-12)
    assert np.isnan(auroc(scores, np.zeros(500, bool)))


def test_uncertainty_scores_on_a_constructed_case():
    from mri_cyclegan.metrics import uncertainty_scores

    rng = np.random.default_rng(1)
    error = rng.random((40, 40)) * 0.3
    mask = np.ones_like(error, bool)
    mask[:5] = False
    good = uncertainty_scores(error + 0.01 * rng.random(error.shape), error, mask)
    assert good["auroc"] > 0.99 and good["rho"] > 0.99
    curve = good["reliability"]["mean_error"]
    assert len(curve) == 10 and all(b > a for a, b in zip(curve, curve[1:]))  # rises from least to most uncertain
    inverted = uncertainty_scores(-error, error, mask)
    assert inverted["auroc"] < 0.01 and inverted["rho"] < -0.99
    constant = uncertainty_scores(np.ones_like(error), error, mask)
    assert constant["auroc"] == pytest.approx(0.5) and np.isnan(constant["rho"])
    assert good["error_fraction"] == pytest.approx(float((error[mask] > 0.1).mean()))
