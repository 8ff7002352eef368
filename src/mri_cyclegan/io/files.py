"""Finding input files."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_EXTENSIONS = (".nii", ".nii.gz")


def is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_EXTENSIONS)


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_inputs(path: str | Path, what: str = "input") -> list[Path]:
    """A file, or the sorted images/volumes inside a folder (recursively). Raises InputError if none."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} not found: {p}; give an existing image, NIfTI volume or folder")
    if p.is_file():
        if not (is_image(p) or is_nifti(p)):
            raise InputError(
                f"{what} {p} is not a supported file; use {', '.join(IMAGE_EXTENSIONS + NIFTI_EXTENSIONS)}"
            )
        return [p]
    files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".") and (is_image(f) or is_nifti(f)))
    if not files:
        raise InputError(
            f"{what} folder {p} holds no images or NIfTI volumes; expected {', '.join(IMAGE_EXTENSIONS + NIFTI_EXTENSIONS)}"
        )
    return files
