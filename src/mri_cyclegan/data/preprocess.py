"""Preprocessing: pure functions on numpy arrays, and one invertible :class:`Preprocessor` that maps a file's
data into model space (canonical orientation, target in-plane spacing, [-1, 1] intensities, a stack of 2D
slices) and back exactly. Training, translation, evaluation and the demo all go through it.

Model space is float32 in [-1, 1], background -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..io.volume import Volume

FOREGROUND = -0.9  # model-space threshold between no signal (-1) and tissue: the one definition, used everywhere


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


def intensity_window(x: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5), floor: str = "zero") -> tuple[float, float]:
    """The window mapped to [-1, 1]. Its top is the upper percentile. Its bottom, with ``floor="zero"``, is 0 for
    non-negative data (magnitude MRI: 0 = no signal), so a tissue keeps its model-space intensity whether or not a
    slice has background around it and whatever the tissue proportions; data with negative values (and
    ``floor="percentile"``) use the lower percentile."""
    lo, hi = robust_range(x, percentiles)
    if floor == "zero" and 0.0 <= lo < hi:
        vals = x[np.isfinite(x)]
        if float(vals.min()) >= 0.0:
            lo = 0.0
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
    return resize_stack(np.asarray(x, dtype=np.float32)[None], shape, mode="bilinear")[0]


def resize_stack(x: np.ndarray, shape: tuple[int, int], mode: str = "bicubic") -> np.ndarray:
    """Resize every slice of a (D, H, W) stack to ``shape`` (antialiased when shrinking; pixel centres
    aligned as ``align_corners=False``, so resizing back to (H, W) is the matching inverse)."""
    if tuple(x.shape[1:]) == tuple(shape):
        return np.asarray(x, dtype=np.float32)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[:, None]
    antialias = shape[0] < x.shape[1] or shape[1] < x.shape[2]
    out = F.interpolate(t, size=tuple(shape), mode=mode, align_corners=False, antialias=antialias)[:, 0]
    if mode == "bicubic":  # cubic overshoot must not leave model space
        out = out.clamp(float(x.min()), float(x.max()))
    return out.numpy()


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


def foreground_fraction(x: np.ndarray, threshold: float = FOREGROUND) -> float:
    """Fraction of pixels above ``threshold`` in model space (background is -1)."""
    return float((x > threshold).mean())


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


# ---------------------------------------------------------------------------- the invertible pipeline
@dataclass(frozen=True)
class Geometry:
    """How one file was mapped into model space: everything :meth:`Preprocessor.inverse` needs."""

    file_shape: tuple[int, ...]  # the data as stored (file voxel order); 2D for images
    affine: np.ndarray | None  # volumes: voxel-to-world, for the reorientation; None for 2D images
    plane_shape: tuple[int, int]  # one slice after reorientation, before resampling
    model_shape: tuple[int, int]  # one slice in model space
    placement: Placement | None  # when slices were fitted into image_size²
    lo: float  # intensity window mapped to [-1, 1]
    hi: float

    @property
    def is_volume(self) -> bool:
        return self.affine is not None


class Preprocessor:
    """File data -> model-space slices (``forward``) and model-space slices -> file data (``inverse``).

    forward, for a volume: reorient to the closest canonical (RAS) orientation; optional N4; map the
    volume's robust intensity window to [-1, 1]; cut into 2D slices along ``axis``; resample each slice
    in-plane to ``target_spacing`` mm (through-plane spacing untouched, so slice k is the file's slice k),
    or fit it into image_size² when ``image_size`` is set. A 2D image is one slice, resampled by
    ``image_scale``. ``inverse`` undoes each step in reverse order, to the file's own grid, voxel order
    and intensity scale. The affine and header are not touched: outputs are written with the input's.
    """

    def __init__(self, cfg, target_spacing: float | None = None) -> None:
        from ..config import DataConfig

        if not isinstance(cfg, DataConfig):
            raise TypeError("Preprocessor needs a DataConfig")
        self.cfg = cfg
        spacing = cfg.spacing if target_spacing is None else target_spacing
        if spacing < 0:
            raise ValueError(f"target spacing must be >= 0; got {spacing}")
        self.target_spacing = float(spacing)  # 0 = keep each volume's own spacing

    # -- geometry of one slice plane
    MAX_SIDE = 4096  # model-space slice sides are bounded: resampling must not turn a lying spacing into a memory bomb
    MIN_SIDE = 8  # ... or into slices too small for the networks (instance norm needs more than one pixel)

    def _model_shape(self, plane: tuple[int, int], plane_spacing: tuple[float, float] | None) -> tuple[int, int]:
        h, w = self._scaled_shape(plane, plane_spacing)
        if (plane_spacing is not None and max(h, w) > self.MAX_SIDE) or min(h, w) < self.MIN_SIDE:  # 2D: the pixel limit applies
            from ..errors import InputError

            where = f" at {plane_spacing[0]:g} x {plane_spacing[1]:g} mm" if plane_spacing else ""
            raise InputError(f"a {plane[0]} x {plane[1]} slice{where} becomes {h} x {w} in model space (target spacing "
                             f"{self.target_spacing:g} mm), outside {self.MIN_SIDE}..{self.MAX_SIDE} pixels a side; check the file's "
                             "voxel size or set --spacing")
        return h, w

    def _scaled_shape(self, plane: tuple[int, int], plane_spacing: tuple[float, float] | None) -> tuple[int, int]:
        h, w = plane
        if plane_spacing is None:  # 2D image: pixel grid, optionally scaled
            f = (self.cfg.image_scale, self.cfg.image_scale)
        elif self.target_spacing:
            f = (plane_spacing[0] / self.target_spacing, plane_spacing[1] / self.target_spacing)
        else:
            f = (1.0, 1.0)
        return (max(1, round(h * f[0])), max(1, round(w * f[1])))

    def plane_spacing(self, volume: Volume) -> tuple[float, float]:
        """(row, column) spacing in mm of the slices of ``volume`` along the configured axis."""
        from ..io.geometry import AXES, canonical_spacing

        sp = list(canonical_spacing(volume.affine))
        ax = AXES[self.cfg.axis]
        a, b = [sp[i] for i in range(3) if i != ax]
        return (b, a)  # slices are rotated by 90 degrees: rows run along the second in-plane axis

    def forward(self, volume: Volume) -> tuple[np.ndarray, Geometry]:
        """(D, h, w) float32 model-space slices of a 3D volume (D slices) or a 2D image (D = 1)."""
        from ..io.geometry import slices, to_canonical

        cfg = self.cfg
        if volume.data.ndim == 2:
            data, affine, plane_sp = volume.data, None, None
            lo, hi = intensity_window(data, cfg.percentiles, cfg.intensity_floor)
            stack = normalize(data, lo, hi)[None]
        else:
            affine = volume.affine
            data = to_canonical(volume.data, affine)
            if cfg.n4:
                from ..io.geometry import canonical_spacing

                data = n4_correct(data, canonical_spacing(affine))
            lo, hi = intensity_window(data, cfg.percentiles, cfg.intensity_floor)
            stack = np.stack(slices(normalize(data, lo, hi), cfg.axis))
            plane_sp = self.plane_spacing(volume)
        plane = (int(stack.shape[1]), int(stack.shape[2]))
        placement = None
        if cfg.image_size:
            fitted = [fit_to_square(s, cfg.image_size) for s in stack]
            stack, placement = np.stack([f for f, _ in fitted]), fitted[0][1]
        else:
            stack = resize_stack(stack, self._model_shape(plane, plane_sp))
        geom = Geometry(tuple(volume.data.shape), affine, plane, (int(stack.shape[1]), int(stack.shape[2])), placement, lo, hi)
        return np.ascontiguousarray(stack, dtype=np.float32), geom

    def inverse(self, stack: np.ndarray, geom: Geometry) -> np.ndarray:
        """Model-space slices (D, h, w) -> data on the file's grid, in its voxel order and intensity scale."""
        return self._to_file_grid(denormalize(self._to_plane(stack, geom), geom.lo, geom.hi), geom)

    def inverse_magnitude(self, stack: np.ndarray, geom: Geometry) -> np.ndarray:
        """Model-space magnitudes (D, h, w) >= 0 (an uncertainty, an error) -> the file's grid in its intensity units:
        the same geometry as :meth:`inverse`, the window's scale without its offset, never below 0."""
        plane = np.maximum(self._to_plane(stack, geom), 0.0)  # bicubic resampling can undershoot
        return self._to_file_grid((plane * (0.5 * (geom.hi - geom.lo))).astype(np.float32), geom)

    def _to_plane(self, stack: np.ndarray, geom: Geometry) -> np.ndarray:
        stack = np.asarray(stack, dtype=np.float32)
        if stack.shape[1:] != geom.model_shape:
            raise ValueError(f"model-space slices have shape {stack.shape[1:]}, expected {geom.model_shape}")
        if geom.placement is not None:
            return np.stack([unfit(s, geom.placement) for s in stack])
        return resize_stack(stack, geom.plane_shape)

    def _to_file_grid(self, data: np.ndarray, geom: Geometry) -> np.ndarray:
        from ..io.geometry import from_canonical, stack as stack_slices

        if not geom.is_volume:
            return data[0]
        return from_canonical(stack_slices(list(data), self.cfg.axis), geom.affine)


def context_windows(stack: torch.Tensor, k: int) -> torch.Tensor:
    """(D, h, w) -> (D, k, h, w): each slice with its (k - 1) / 2 neighbours on each side as channels,
    the end slices repeated past the ends of the stack."""
    if k == 1:
        return stack[:, None]
    r = k // 2
    d = stack.shape[0]
    idx = (torch.arange(d)[:, None] + torch.arange(-r, r + 1)[None]).clamp(0, d - 1)  # (D, k)
    return stack[idx]
