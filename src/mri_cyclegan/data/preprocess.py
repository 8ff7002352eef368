"""Preprocessing as pure functions on numpy arrays. Model space is float32 in [-1, 1], background -1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError


def robust_range(x: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> tuple[float, float]:
    """Intensity window from percentiles of the finite values; never degenerate."""
    vals = x[np.isfinite(x)]
    if vals.size == 0:
        raise ValueError("no finite intensities")
    lo, hi = (float(v) for v in np.percentile(vals, percentiles))
    if hi <= lo:  # very sparse images: fall back to the full range
        lo, hi = float(vals.min()), float(vals.max())
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


def normalize(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] to [-1, 1], clipping outside."""
    y = (np.asarray(x, dtype=np.float32) - lo) / (hi - lo) * 2.0 - 1.0
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def denormalize(y: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Inverse of :func:`normalize` (inside the window)."""
    return ((np.asarray(y, dtype=np.float32) + 1.0) / 2.0 * (hi - lo) + lo).astype(np.float32)


@dataclass(frozen=True)
class Placement:
    """Where an image of ``shape`` went inside a size x size square."""

    shape: tuple[int, int]
    resized: tuple[int, int]
    offset: tuple[int, int]


def _resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if tuple(x.shape) == tuple(shape):
        return np.asarray(x, dtype=np.float32)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]
    antialias = shape[0] < x.shape[0] or shape[1] < x.shape[1]
    out = F.interpolate(t, size=shape, mode="bilinear", align_corners=False, antialias=antialias)
    return out[0, 0].numpy()


def fit_to_square(x: np.ndarray, size: int, fill: float = -1.0) -> tuple[np.ndarray, Placement]:
    """Resize (aspect kept) so the longer side is ``size``, then centre-pad to size x size with ``fill``."""
    h, w = x.shape
    scale = size / max(h, w)
    rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = _resize(x, (rh, rw))
    out = np.full((size, size), fill, dtype=np.float32)
    oy, ox = (size - rh) // 2, (size - rw) // 2
    out[oy : oy + rh, ox : ox + rw] = resized
    return out, Placement(shape=(h, w), resized=(rh, rw), offset=(oy, ox))


def unfit(y: np.ndarray, placement: Placement) -> np.ndarray:
    """Inverse of :func:`fit_to_square`: crop the padding and resize back to the original shape."""
    (oy, ox), (rh, rw) = placement.offset, placement.resized
    return _resize(y[oy : oy + rh, ox : ox + rw], placement.shape)


def foreground_fraction(x: np.ndarray, threshold: float = -0.9) -> float:
    """Fraction of pixels above ``threshold`` in model space (background is -1)."""
    return float((x > threshold).mean())


def resample_volume(data: np.ndarray, spacing: tuple[float, ...], target: float, order: int = 1) -> np.ndarray:
    """Resample to isotropic ``target`` spacing (mm) with spline ``order``."""
    from scipy import ndimage

    zoom = [s / target for s in spacing]
    return ndimage.zoom(data, zoom, order=order).astype(np.float32)


def resample_to_shape(data: np.ndarray, shape: tuple[int, ...], order: int = 1) -> np.ndarray:
    from scipy import ndimage

    zoom = [n / s for n, s in zip(shape, data.shape)]
    out = ndimage.zoom(data, zoom, order=order)
    pad = [(0, max(0, n - s)) for n, s in zip(shape, out.shape)]
    out = np.pad(out, pad, mode="edge")[tuple(slice(0, n) for n in shape)]
    return out.astype(np.float32)


def n4_correct(data: np.ndarray, spacing: tuple[float, ...] = (1.0, 1.0, 1.0), shrink: int = 2) -> np.ndarray:
    """N4 bias-field correction (SimpleITK), in a foreground mask from Otsu; returns the corrected volume."""
    try:
        import SimpleITK as sitk
    except ImportError:
        raise InputError("N4 bias-field correction needs SimpleITK: pip install 'mri-cyclegan[n4]'") from None
    shift = float(min(0.0, data.min()))
    img = sitk.GetImageFromArray(np.ascontiguousarray(data - shift + 1e-3, dtype=np.float32))
    img.SetSpacing([float(s) for s in reversed(spacing)])
    mask = sitk.OtsuThreshold(img, 0, 1, 200)
    small = sitk.Shrink(img, [shrink] * img.GetDimension())
    small_mask = sitk.Shrink(mask, [shrink] * img.GetDimension())
    corrector = sitk.N4BiasFieldCorrectionImageFilter()
    corrector.SetMaximumNumberOfIterations([25, 25, 25])
    corrector.Execute(small, small_mask)
    log_field = corrector.GetLogBiasFieldAsImage(img)
    corrected = img / sitk.Exp(log_field)
    return (sitk.GetArrayFromImage(corrected) + shift - 1e-3).astype(np.float32)
