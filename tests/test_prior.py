"""The intensity prior holds when the unpaired T1 and T2 sets differ in tissue proportions, coverage and background."""

import numpy as np
import pytest
from scipy import ndimage

from mri_cyclegan.baselines import apply_lut, inverse_histogram_lut, knots, tissue_values
from mri_cyclegan.config import DataConfig
from mri_cyclegan.data.preprocess import Preprocessor
from mri_cyclegan.io import Volume

from tests.phantoms import T1, T2, TISSUES, render_tissues, tissue_labels

PRE = Preprocessor(DataConfig())


def _model_space(img: np.ndarray) -> np.ndarray:
    return PRE.forward(Volume(img))[0][0]


def _set(n, shape, fractions, background, seed, contrast):
    rng = np.random.default_rng(seed)
    labs = [tissue_labels(shape, fractions, background, rng) for _ in range(n)]
    return labs, [_model_space(render_tissues(lab, contrast, rng)) for lab in labs]


def _tissue_errors(lut, t1_test, t2_test, labs) -> dict[str, float]:
    """|mean of the mapped T1 - mean of the true T2| per tissue, on pixels away from tissue borders."""
    errors = {}
    for k, name in TISSUES.items():
        pred, ref = [], []
        for a, b, lab in zip(t1_test, t2_test, labs):
            pure = ndimage.binary_erosion(lab == k, iterations=2)
            pred.append(apply_lut(a, lut)[pure])
            ref.append(b[pure])
        errors[name] = abs(float(np.concatenate(pred).mean() - np.concatenate(ref).mean()))
    return errors


@pytest.fixture(scope="module")
def cohorts():
    """T1 set: 10/45/45 % CSF/GM/WM, 64x64 slices in air. T2 set: 40/35/25 %, 56x72, no background at all.
    Test: paired 25/40/35 % slices in air, with the true tissue maps."""
    _, t1_train = _set(10, (64, 64), (0.10, 0.45, 0.45), True, 1, T1)
    _, t2_train = _set(10, (56, 72), (0.40, 0.35, 0.25), False, 2, T2)
    rng = np.random.default_rng(3)
    labs = [tissue_labels((64, 64), (0.25, 0.40, 0.35), True, rng) for _ in range(4)]
    t1_test = [_model_space(render_tissues(lab, T1, rng)) for lab in labs]
    t2_test = [_model_space(render_tissues(lab, T2, rng)) for lab in labs]
    return tissue_values(t1_train), tissue_values(t2_train), t1_test, t2_test, labs


def test_prior_is_robust_to_tissue_proportions(cohorts):
    t1, t2, t1_test, t2_test, labs = cohorts
    robust = _tissue_errors(inverse_histogram_lut(t1, t2), t1_test, t2_test, labs)
    plain = _tissue_errors(inverse_histogram_lut(t1, t2, reweight=False), t1_test, t2_test, labs)
    assert max(robust.values()) < 0.1, robust
    assert plain["gm"] > 0.3, plain  # raw quantile matching sends grey matter towards CSF brightness


def test_prior_is_continuous_and_keeps_background(cohorts):
    t1, t2, *_ = cohorts
    lut = inverse_histogram_lut(t1, t2)
    assert lut[0] == -1.0
    assert np.abs(np.diff(lut)).max() < 0.25  # no jump from black to bright anywhere (knots are 0.008 apart)
    top = int(lut.argmax())
    assert knots()[top] < -0.3 and np.all(np.diff(lut[: top + 1]) >= 0)  # a ramp from the background to the darkest tissue ...
    assert np.all(np.diff(lut[top:]) <= 1e-6)  # ... then decreasing over tissue


def test_source_without_background_keeps_its_darkest_tissue(cohorts):
    """T2 -> T1 from the T2 set, which has no background: its darkest tissue (WM) must not be thrown to black."""
    t1, t2, t1_test, t2_test, labs = cohorts
    lut = inverse_histogram_lut(t2, t1)
    rng = np.random.default_rng(9)
    lab = tissue_labels((60, 60), (0.40, 0.35, 0.25), False, rng)
    mapped = apply_lut(_model_space(render_tissues(lab, T2, rng)), lut)
    wm = mapped[ndimage.binary_erosion(lab == 3)]
    assert (wm < -0.5).mean() < 0.01  # real T1 WM is the brightest tissue
    assert abs(float(wm.mean()) - float(np.mean([b[lab_ == 3].mean() for b, lab_ in zip(t1_test, labs)]))) < 0.1


def test_window_starts_at_zero_so_tissue_values_do_not_depend_on_background():
    rng = np.random.default_rng(4)
    lab = tissue_labels((80, 80), (0.25, 0.40, 0.35), True, rng)
    img = render_tissues(lab, T1, rng)
    crop = (slice(22, 58), slice(22, 58))  # brain only, no air around it
    whole, inner = _model_space(img), _model_space(img[crop])
    csf = lab[crop] == 1  # the darkest tissue: where a percentile window would move most
    assert csf.sum() > 10
    assert abs(float(whole[crop][csf].mean() - inner[csf].mean())) < 0.05
    legacy = Preprocessor(DataConfig(intensity_floor="percentile"))
    assert abs(float(whole[crop][csf].mean() - legacy.forward(Volume(img[crop]))[0][0][csf].mean())) > 0.2


def _blurred_set(means: dict[str, float], wm_radius: int, seed: int) -> list[np.ndarray]:
    """Model-space slices: a WM disc of ``wm_radius``, a GM ring with CSF sulci, a CSF rim, air; blurred (partial
    volume at every boundary) and noisy. The CSF/GM mixture voxels fill the gap between their peaks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:128, :128]
    r = np.hypot(yy - 64, xx - 64)
    out = []
    for k in range(6):
        lab = np.zeros((128, 128), int)
        lab[r < 56], lab[r < 50], lab[r < wm_radius] = 3, 2, 1
        for a in np.linspace(0, 2 * np.pi, 12, endpoint=False) + k:
            for t in np.linspace(wm_radius, 52, 30):
                y, x = int(64 + t * np.sin(a)), int(64 + t * np.cos(a))
                lab[y - 1 : y + 1, x - 1 : x + 1] = 3
        img = np.full(lab.shape, -1.0)
        for i, name in ((1, "wm"), (2, "gm"), (3, "csf")):
            img[lab == i] = means[name]
        out.append((ndimage.gaussian_filter(img, 1.2) + rng.normal(0, 0.03, img.shape)).astype(np.float32))
    return out


def test_tissue_classes_are_fitted_where_there_is_no_partial_volume():
    """Case (e) of the faithfulness benchmark in miniature: a T1 set with little WM, a T2 set with much. Fitted on all
    tissue values, the T2 mixture puts a class on CSF/GM partial volume, the proportions come out wrong and grey
    matter is mapped to white-matter brightness (0.27 off). Fitted on pure voxels (away from edges), every class
    mean maps onto its own within 0.06."""
    from mri_cyclegan.baselines import fit_classes, tissue_classes

    t1 = {"csf": -0.2, "gm": 0.56, "wm": 0.93}
    t2 = {"csf": 0.94, "gm": -0.06, "wm": -0.34}
    src, tgt = tissue_values(_blurred_set(t1, 20, 0)), tissue_values(_blurred_set(t2, 42, 1))
    lut = inverse_histogram_lut(src, tgt)
    for tissue in t1:
        assert abs(float(apply_lut(np.array([t1[tissue]]), lut)[0]) - t2[tissue]) < 0.06, tissue
    pure, plain = tissue_classes(tgt), fit_classes(tgt.tissue)
    assert np.abs(pure.means - sorted(t2.values())).max() < 0.06 < np.abs(plain.means - sorted(t2.values())).max()
    assert pure.weights[0] > pure.weights[1]  # this T2 set holds more WM than GM, on all of its voxels


def test_class_boundaries_lie_where_the_most_likely_class_changes():
    from mri_cyclegan.baselines import TissueClasses

    equal = TissueClasses(np.array([-0.5, 0.0, 0.5]), np.full(3, 0.1), np.full(3, 1 / 3))
    np.testing.assert_allclose(equal.boundaries(), [-0.25, 0.25], atol=1e-3)
    # a more common class pushes the boundary towards its neighbour
    common_middle = TissueClasses(np.array([-0.5, 0.0, 0.5]), np.full(3, 0.1), np.array([0.2, 0.6, 0.2]))
    b = common_middle.boundaries()
    assert b[0] < -0.25 and b[1] > 0.25
