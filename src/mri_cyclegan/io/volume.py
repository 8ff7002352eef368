"""The one in-memory container for images and volumes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)


MAX_VOXELS = 512**3  # largest volume read (a 0.5 mm whole head is ~ 400 x 500 x 400); 512 MiB of float32
MAX_FRAMES = 1  # volumes are 3D; a 4D file may hold a single volume


def check_header_size(shape, itemsize: int, label: str) -> None:
    """Refuse a volume whose header asks for more than :data:`MAX_VOXELS` voxels (or a non-positive size) before
    anything is decompressed or allocated: a small crafted file cannot take the machine's memory."""
    dims = [int(d) for d in shape]
    if any(d <= 0 for d in dims):
        raise InputError(f"{label}: its header gives the size {tuple(dims)}; the file is corrupt")
    n = int(np.prod(np.array(dims, dtype=object)))
    if n > MAX_VOXELS:
        raise InputError(f"{label}: its header claims {'x'.join(map(str, dims))} voxels ({n * itemsize / 2**30:.1f} GiB), more than the "
                         f"{MAX_VOXELS:,}-voxel limit for one volume; the header is wrong or the file is not a single 3D volume")


MIN_SPACING, MAX_SPACING = 0.01, 100.0  # mm: a voxel outside this is a broken header, not an MRI


def check_affine(affine: np.ndarray, label: str) -> None:
    """A voxel-to-world affine must be finite with voxel sizes in [MIN_SPACING, MAX_SPACING] mm and axes that are not
    (nearly) parallel; otherwise one line (geometry drives resampling: a lying header would allocate or mirror)."""
    a = np.asarray(affine, np.float64)
    if a.shape != (4, 4) or not np.isfinite(a).all():
        raise InputError(f"{label}: its orientation/affine holds NaN or inf values; the header is corrupt")
    spacing = np.sqrt((a[:3, :3] ** 2).sum(0))
    if not ((spacing >= MIN_SPACING) & (spacing <= MAX_SPACING)).all():
        raise InputError(f"{label}: its voxel size {tuple(round(float(s), 6) for s in spacing)} mm is outside "
                         f"{MIN_SPACING}-{MAX_SPACING} mm; the header's spacing is wrong")
    axes = a[:3, :3] / spacing
    if abs(np.linalg.det(axes)) < 0.5:
        raise InputError(f"{label}: its voxel axes are (nearly) parallel (direction cosines {np.round(axes, 3).T.tolist()}); "
                         "the header's orientation is corrupt")


def checked_content(data: np.ndarray, label: str) -> np.ndarray:
    """Refuse an empty, NaN/inf-only or constant volume (one line naming ``label``); NaN/inf voxels become 0
    with a warning. Returns float32 data."""
    if data.size == 0:
        raise InputError(f"{label} is empty (shape {data.shape})")
    finite = np.isfinite(data)
    if not finite.any():
        raise InputError(f"{label} holds only NaN/inf values")
    if np.ptp(data[finite]) == 0:
        raise InputError(f"{label} is constant ({float(data[finite][0])}); it holds no image")
    if not finite.all():
        log.warning("%s: %d NaN/inf voxels read as 0", label, int((~finite).sum()))
        return np.where(finite, data, 0.0).astype(np.float32)
    return np.asarray(data, np.float32)


@dataclass
class Volume:
    """Float32 intensities with their voxel-to-world affine and the original header.

    A 2D image is a Volume with a 2D ``data`` array and an identity affine.
    """

    data: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    header: Any = None
    path: Path | None = None

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4; got {self.affine.shape}")
        if self.data.ndim not in (2, 3):
            raise ValueError(f"data must be 2D or 3D; got shape {self.data.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        return tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(0)))[: self.data.ndim]
