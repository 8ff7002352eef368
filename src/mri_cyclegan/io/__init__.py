"""Readers and writers around one ``Volume`` (float32 data + affine + header)."""

from .files import IMAGE_EXTENSIONS, NIFTI_EXTENSIONS, is_image, is_nifti, list_inputs
from .images import ImageInfo, read_image, write_image
from .nifti import read_nifti, write_nifti
from .volume import Volume


def read_any(path) -> Volume:
    """An image (a 2D Volume with an identity affine) or a NIfTI volume."""
    if is_nifti(path):
        return read_nifti(path)
    arr, _ = read_image(path)
    return Volume(arr, path=path)


__all__ = [
    "IMAGE_EXTENSIONS",
    "NIFTI_EXTENSIONS",
    "ImageInfo",
    "Volume",
    "is_image",
    "is_nifti",
    "list_inputs",
    "read_any",
    "read_image",
    "read_nifti",
    "write_image",
    "write_nifti",
]
