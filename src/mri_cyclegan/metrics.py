"""Image-quality metrics as pure functions with an explicit data range and an optional mask.

SSIM follows Wang et al. 2004: Gaussian window sigma 1.5 (truncated at 3.5 sigma: 11x11), K1 0.01,
K2 0.03, population covariances; identical to ``skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=R)`` without a mask.
With a mask, the SSIM map is averaged over the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# ------------------------------------------------------------------------------------------ scoring protocol
# One protocol for `evaluate`, paired validation and the demo: each image (or whole volume) is mapped to [0, 1] by
# its own robust window (to_unit), then scored in a mask with data range 1 by score(): per slice along the
# translation axis (keys psnr/ssim/mae: means over slices) and as one 3D volume (keys psnr_3d/ssim_3d/mae_3d).
WINDOW = (0.5, 99.5)  # percentiles of the unit window
SLICE_METRICS = ("psnr", "ssim", "mae")  # means over the slices of a volume (2D images: the image itself)
VOLUME_METRICS = ("psnr_3d", "ssim_3d", "mae_3d", "tp_error", "tp_ratio")  # one value per volume
MASK_FRACTION = 0.1  # the automatic evaluation mask: reference above this fraction of its 1-99 % range


def to_unit(data: np.ndarray, percentiles: tuple[float, float] = WINDOW) -> np.ndarray:
    """Map an image's (volume's) own robust intensity window to [0, 1] (the rule for every image scored)."""
    from .data.preprocess import normalize, robust_range

    return ((normalize(data, *robust_range(data, percentiles)) + 1) / 2).astype(np.float64)


def unit_magnitude(magnitude: np.ndarray, data: np.ndarray, percentiles: tuple[float, float] = WINDOW) -> np.ndarray:
    """A magnitude in ``data``'s intensity units (an uncertainty map of a translation) on the [0, 1] scale that
    :func:`to_unit` gives ``data``: divided by the width of data's robust window."""
    from .data.preprocess import robust_range

    lo, hi = robust_range(data, percentiles)
    return np.asarray(magnitude, np.float64) / max(hi - lo, 1e-12)


def foreground_mask(ref: np.ndarray, fraction: float = MASK_FRACTION) -> np.ndarray:
    """The automatic *evaluation* mask when none is given: the [0, 1] reference above ``fraction`` of its 1-99 %
    range, opened, holes filled. Not the model-space foreground (``data.preprocess.FOREGROUND``, which decides
    what the network sees as signal): this one decides which voxels a score averages over, and is deliberately
    more conservative so a noisy background never counts as brain."""
    from scipy import ndimage

    a = np.asarray(ref, np.float64)
    lo = np.percentile(a, 1)
    thr = lo + fraction * (np.percentile(a, 99) - lo)
    m = a > thr
    return ndimage.binary_fill_holes(ndimage.binary_opening(m, iterations=1))


def image_scores(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """PSNR / SSIM / MAE of one [0, 1] image or volume (any dimension) with data range 1 inside the mask
    (automatic :func:`foreground_mask` if None)."""
    m = foreground_mask(ref) if mask is None else np.asarray(mask, bool)
    p, r = np.asarray(pred), np.asarray(ref)
    return {"psnr": psnr(p, r, 1.0, m), "ssim": ssim(p, r, 1.0, m), "mae": mae(p, r, 1.0, m)}


@dataclass
class Scored:
    """One scored file: per-slice rows (a 2D image: one row) and, for volumes, one 3D row."""

    slices: list[dict[str, float]]
    volume: dict[str, float] | None

    def means(self) -> dict[str, float]:
        """The file's numbers under their protocol names: ``psnr`` etc. as means over slices, ``psnr_3d`` etc."""
        out = {k: float(np.mean([r[k] for r in self.slices])) for k in SLICE_METRICS if self.slices}
        return {**out, **(self.volume or {})}


def mask_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """The mask's bounding box grown by ``margin`` (clipped to the array)."""
    idx = np.argwhere(mask)
    lo, hi = idx.min(0) - margin, idx.max(0) + margin + 1
    return tuple(slice(max(0, int(a)), min(n, int(b))) for a, b, n in zip(lo, hi, mask.shape))


def score(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, axis: int = 2, min_slice_fraction: float = 0.01) -> Scored:
    """The scoring protocol: a [0, 1] prediction against its [0, 1] reference (2D, or canonical 3D) inside ``mask``.

    A 2D image gives one row. A volume gives a row per slice along ``axis`` (slices whose mask covers less than
    ``min_slice_fraction`` and 16 pixels are left out) and one 3D row (``*_3d`` and through-plane consistency)."""
    if pred.ndim == 2:
        return Scored([image_scores(pred, ref, mask)], None)
    if pred.shape != ref.shape or mask.shape != ref.shape:
        raise ValueError(f"shapes differ: prediction {pred.shape}, reference {ref.shape}, mask {mask.shape}")
    # every voxel whose SSIM window touches the mask lies in this box: scores are the same as on the whole volume
    box = mask_box(mask, SSIM_RADIUS)
    p, r, m = pred[box], ref[box], mask[box]
    rows = []
    for k, (ps, rs, ms) in enumerate(zip(np.moveaxis(p, axis, 0), np.moveaxis(r, axis, 0), np.moveaxis(m, axis, 0))):
        if ms.sum() >= max(16, min_slice_fraction * ms.size):
            rows.append({"slice": k + box[axis].start, **image_scores(ps, rs, ms)})
    vol = {f"{k}_3d": v for k, v in image_scores(p, r, m).items()}
    vol.update(through_plane(p, r, axis, m))
    return Scored(rows, vol)


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
