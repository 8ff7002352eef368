"""Voxel geometry every format shares: the canonical (closest RAS+) orientation and back, spacing in that
orientation, and 2D slices along a named anatomical axis. Formats read into a :class:`.volume.Volume` whose affine
maps voxels to RAS+ millimetres; everything after that uses only this module."""

from __future__ import annotations

import numpy as np

AXES = {"sagittal": 0, "coronal": 1, "axial": 2}  # in RAS+ canonical orientation
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # DICOM and ITK (NRRD, MetaImage) world coordinates are LPS


def _orientations(affine: np.ndarray):
    import nibabel.orientations as no

    orig = no.io_orientation(affine)
    ras = no.axcodes2ornt(("R", "A", "S"))
    return no, orig, ras


def to_canonical(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Reorder/flip axes so that they run (closest to) R, A, S."""
    no, orig, ras = _orientations(affine)
    return np.ascontiguousarray(no.apply_orientation(data, no.ornt_transform(orig, ras)))


def from_canonical(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_canonical`: back to the voxel order of the file with ``affine``."""
    no, orig, ras = _orientations(affine)
    return np.ascontiguousarray(no.apply_orientation(data, no.ornt_transform(ras, orig)))


def canonical_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    no, orig, _ = _orientations(affine)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(0))
    out = [0.0, 0.0, 0.0]
    for i, (ax, _) in enumerate(orig):
        out[int(ax)] = float(zooms[i])
    return (out[0], out[1], out[2])


def slices(canonical: np.ndarray, axis: str) -> list[np.ndarray]:
    """2D slices of a canonical volume along ``axis``, rotated so that up is anterior/superior."""
    ax = AXES[axis]
    moved = np.moveaxis(canonical, ax, 0)
    return [np.ascontiguousarray(np.rot90(s)) for s in moved]


def stack(slice_list: list[np.ndarray], axis: str) -> np.ndarray:
    """Inverse of :func:`slices`."""
    moved = np.stack([np.rot90(s, -1) for s in slice_list], axis=0)
    return np.ascontiguousarray(np.moveaxis(moved, 0, AXES[axis]))


def closest_axis(affine: np.ndarray, axis: str) -> int:
    """The voxel axis of a file with ``affine`` that runs closest to the anatomical ``axis``'s normal."""
    _, orig, _ = _orientations(affine)
    hits = np.flatnonzero(orig[:, 0] == AXES[axis])
    return int(hits[0]) if hits.size else len(orig) - 1  # a degenerate affine: the last voxel axis
