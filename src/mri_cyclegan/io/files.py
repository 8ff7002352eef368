"""Finding input files: 2D images, volume files, and DICOM series (one entry per series)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .dicom import DICOM_EXTENSIONS, group_series, looks_like_dicom
from .formats import volume_format

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_EXTENSIONS = (".nii", ".nii.gz")
# files that are never images: sidecars and notes beside the data (not opened to look for DICOM)
NOT_IMAGES = (".json", ".tsv", ".csv", ".txt", ".md", ".html", ".yaml", ".yml", ".log", ".bval", ".bvec", ".py", ".zip", ".gz", ".safetensors", ".onnx")
SUPPORTED = "images (.png, .tif, ...), volumes (.nii/.nii.gz, .mgz/.mgh, .nrrd, .mha/.mhd) or DICOM series"


def is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_EXTENSIONS)


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_dicom(path: str | Path) -> bool:
    p = Path(path)
    if p.suffix.lower() in DICOM_EXTENSIONS:
        return True
    return not (is_image(p) or volume_format(p) or p.suffix.lower() in NOT_IMAGES) and p.is_file() and looks_like_dicom(p)


def is_volume(path: str | Path) -> bool:
    """A 3D source: a volume file, or a file of a DICOM series (which stands for its whole series)."""
    return volume_format(path) is not None or is_dicom(path)


def list_inputs(path: str | Path, what: str = "input") -> list[Path]:
    """A file, or the sorted images/volumes inside a folder (recursively); a DICOM series appears once, as its
    first file (reading it reads the series). Raises InputError if none."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} not found: {p}; give an existing image, volume, DICOM folder or folder of them")
    if p.is_file():
        if not (is_image(p) or is_volume(p)):
            raise InputError(f"{what} {p} is not a supported file; use {SUPPORTED}")
        return [p]
    files, dicoms = [], []
    for f in sorted(p.rglob("*")):
        if not f.is_file() or any(part.startswith(".") for part in f.relative_to(p).parts):
            continue
        if is_image(f) or volume_format(f):
            files.append(f)
        elif is_dicom(f):
            dicoms.append(f)
    files += list(group_series(dicoms))
    if not files:
        raise InputError(f"{what} folder {p} holds no {SUPPORTED}")
    return sorted(files)
