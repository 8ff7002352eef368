"""Finding input files: 2D images, volume files, and DICOM series (one entry per series)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

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


def match_pairs(pred_files: Sequence[Path], ref_files: Sequence[Path], names: tuple[str, str] = ("prediction", "reference"),
                example: str = "pred/slice_01.png and ref/slice_01.png") -> list[tuple[Path, Path]]:
    """Pair files by name (extension ignored; a trailing '_fake'/'_pred', and a contrast tag '_T1w'/'_T2w'/'_t1'/'_t2'
    as in BIDS, tolerated). The one pairing rule of ``evaluate``, paired validation and paired training; ``names`` and
    ``example`` only word the error when nothing pairs."""
    def key(p: Path) -> str:
        name = p.name.lower()
        for ext in (".nii.gz", ".nii", p.suffix.lower()):
            if ext and name.endswith(ext):
                name = name[: -len(ext)]
                break
        for tail in ("_fake", "_pred", "_translated"):
            name = name.removesuffix(tail)
        for tail in ("_t1w", "_t2w", "_t1", "_t2"):
            name = name.removesuffix(tail)
        return name

    if len(pred_files) == 1 and len(ref_files) == 1:
        return [(pred_files[0], ref_files[0])]
    refs = {key(r): r for r in ref_files}
    pairs = [(p, refs[key(p)]) for p in pred_files if key(p) in refs]
    if not pairs:
        raise InputError(f"no {names[0]} matches a {names[1]} by file name; name them alike (e.g. {example})")
    return pairs
