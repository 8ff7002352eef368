"""Image-quality metrics as pure functions with an explicit data range and an optional mask.

SSIM follows Wang et al. 2004: Gaussian window sigma 1.5 (truncated at 3.5 sigma: 11x11), K1 0.01,
K2 0.03, population covariances; identical to ``skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=R)`` without a mask.
With a mask, the SSIM map is averaged over the mask.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def _prep(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p, r = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    if p.shape != r.shape:
        raise ValueError(f"prediction and reference shapes differ: {p.shape} vs {r.shape}")
    m = np.ones(p.shape, bool) if mask is None else np.asarray(mask, bool)
    if m.shape != p.shape:
        raise ValueError(f"mask shape {m.shape} differs from image shape {p.shape}")
    if not m.any():
        raise ValueError("mask is empty")
    return p, r, m


def mae(pred: np.ndarray, ref: np.ndarray, data_range: float, mask: np.ndarray | None = None) -> float:
    """Mean absolute error inside the mask, as a fraction of ``data_range``."""
    p, r, m = _prep(pred, ref, mask)
    return float(np.abs(p - r)[m].mean() / data_range)


def psnr(pred: np.ndarray, ref: np.ndarray, data_range: float, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio (dB) inside the mask: 10 log10(R^2 / MSE)."""
    p, r, m = _prep(pred, ref, mask)
    mse = float(((p - r) ** 2)[m].mean())
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


SSIM_RADIUS = int(3.5 * 1.5 + 0.5)  # half-width of the default Gaussian window (sigma 1.5, truncated at 3.5 sigma)


def ssim_map(pred: np.ndarray, ref: np.ndarray, data_range: float, sigma: float = 1.5) -> np.ndarray:
    p, r = np.asarray(pred, np.float64), np.asarray(ref, np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    f = lambda x: gaussian_filter(x, sigma=sigma, truncate=3.5, mode="reflect")  # noqa: E731
    mu_p, mu_r = f(p), f(r)
    var_p = f(p * p) - mu_p**2
    var_r = f(r * r) - mu_r**2
    cov = f(p * r) - mu_p * mu_r
    return ((2 * mu_p * mu_r + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_r**2 + c1) * (var_p + var_r + c2))


def ssim(pred: np.ndarray, ref: np.ndarray, data_range: float, mask: np.ndarray | None = None, sigma: float = 1.5) -> float:
    """Mean SSIM (2D, or 3D with a 3D Gaussian window): over the mask if given, else over the image minus a
    (window - 1) / 2 border (as skimage)."""
    p, r, m = _prep(pred, ref, mask)
    if p.ndim not in (2, 3):
        raise ValueError("ssim expects 2D images or 3D volumes")
    smap = ssim_map(p, r, data_range, sigma)
    if mask is not None:
        return float(smap[m].mean())
    pad = int(3.5 * sigma + 0.5)  # half the Gaussian window (skimage's truncate=3.5)
    return float(smap[(slice(pad, -pad),) * p.ndim].mean())


def through_plane(pred: np.ndarray, ref: np.ndarray, axis: int, mask: np.ndarray | None = None) -> dict[str, float]:
    """Slice-to-slice consistency along ``axis`` (the translation axis of a 3D volume): the mean absolute
    difference between the prediction's and the reference's slice-to-slice gradients (``tp_error``, in data
    units), and its ratio to the reference's own mean absolute gradient (``tp_ratio``; 0 = perfect). Striping
    between independently translated slices raises both. Over voxel pairs with both voxels in the mask."""
    p, r, m = _prep(pred, ref, mask)
    if p.ndim != 3:
        raise ValueError("through_plane expects 3D volumes")
    gp, gr = np.diff(p, axis=axis), np.diff(r, axis=axis)
    n = p.shape[axis]
    pair = np.take(m, range(n - 1), axis=axis) & np.take(m, range(1, n), axis=axis)
    if not pair.any():
        raise ValueError("mask has no two neighbouring slices")
    err = float(np.abs(gp - gr)[pair].mean())
    return {"tp_error": err, "tp_ratio": err / max(float(np.abs(gr)[pair].mean()), 1e-12)}


def normalize_in_mask(x: np.ndarray, mask: np.ndarray | None = None, percentiles: tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """Map the ``percentiles`` of the intensities inside the mask to [0, 1] (clipped): data range 1."""
    a = np.asarray(x, np.float64)
    vals = a[mask] if mask is not None else a.ravel()
    lo, hi = np.percentile(vals, percentiles)
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def foreground_mask(ref: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    """Automatic mask when none is given: reference above ``fraction`` of its 99th percentile, holes filled."""
    from scipy import ndimage

    a = np.asarray(ref, np.float64)
    lo = np.percentile(a, 1)
    thr = lo + fraction * (np.percentile(a, 99) - lo)
    m = a > thr
    return ndimage.binary_fill_holes(ndimage.binary_opening(m, iterations=1))


def score(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None, normalize: bool = False) -> dict[str, float]:
    """PSNR / SSIM / MAE with data range 1 inside the mask (automatic foreground mask if None).

    Inputs are expected in [0, 1] on a common scale; ``normalize=True`` first maps each one's in-mask
    0.5/99.5 percentiles to [0, 1] (the same rule for prediction and reference)."""
    m = foreground_mask(ref) if mask is None else np.asarray(mask, bool)
    p, r = (normalize_in_mask(pred, m), normalize_in_mask(ref, m)) if normalize else (np.asarray(pred), np.asarray(ref))
    return {"psnr": psnr(p, r, 1.0, m), "ssim": ssim(p, r, 1.0, m), "mae": mae(p, r, 1.0, m)}


# ---------------------------------------------------------------------------------------------- uncertainty
ERROR_THRESHOLD = 0.1  # a voxel is "wrong" when |error| exceeds this fraction of the data range (uncertainty scores)


def _flat(uncertainty: np.ndarray, error: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    u, e, m = _prep(uncertainty, error, mask)
    u, e = u[m], np.abs(e[m])
    if not (np.isfinite(u).all() and np.isfinite(e).all()):
        raise ValueError("uncertainty and error must be finite inside the mask")
    return u, e


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for finding the True ``labels`` (ties count one half): the probability
    that a random positive scores above a random negative (Mann-Whitney U / (n_pos n_neg)). NaN without both classes."""
    from scipy.stats import rankdata

    s, y = np.asarray(scores, np.float64).ravel(), np.asarray(labels, bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in size: {s.size} vs {y.size}")
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks for ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def uncertainty_scores(uncertainty: np.ndarray, error: np.ndarray, mask: np.ndarray | None = None,
                       threshold: float = ERROR_THRESHOLD, bins: int = 10) -> dict:
    """How well a per-voxel ``uncertainty`` points at the per-voxel ``error`` (data range 1; its absolute value is
    used) inside the mask: ``auroc`` for finding voxels with |error| > ``threshold``, Spearman ``rho`` between
    uncertainty and |error|, the share of such voxels (``error_fraction``), and a reliability curve: the mean |error|
    and mean uncertainty in each of ``bins`` uncertainty quantile bins (lowest first)."""
    from scipy.stats import spearmanr

    u, e = _flat(uncertainty, error, mask)
    rho = float(spearmanr(u, e).statistic) if u.size > 1 and np.ptp(u) > 0 and np.ptp(e) > 0 else float("nan")
    order = np.argsort(u, kind="stable")
    parts = np.array_split(order, bins)
    return {
        "auroc": auroc(u, e > threshold),
        "rho": rho,
        "error_fraction": float((e > threshold).mean()),
        "threshold": threshold,
        "reliability": {"mean_uncertainty": [float(u[p].mean()) if p.size else float("nan") for p in parts],
                        "mean_error": [float(e[p].mean()) if p.size else float("nan") for p in parts]},
    }
