"""Readers and writers around one ``Volume`` (float32 data + affine + header)."""

from .files import IMAGE_EXTENSIONS, NIFTI_EXTENSIONS, is_dicom, is_image, is_nifti, is_volume, list_inputs
from .formats import VOLUME_EXTENSIONS, read_volume, write_volume
from .images import ImageInfo, read_image, write_image
from .nifti import read_nifti, write_nifti
from .volume import Volume


def read_any(path) -> Volume:
    """An image (a 2D Volume with an identity affine), a volume file, or the DICOM series of a DICOM file."""
    if is_volume(path):
        return read_volume(path)
    arr, _ = read_image(path)
    return Volume(arr, path=path)


__all__ = [
    "IMAGE_EXTENSIONS",
    "NIFTI_EXTENSIONS",
    "VOLUME_EXTENSIONS",
    "ImageInfo",
    "Volume",
    "is_dicom",
    "is_image",
    "is_nifti",
    "is_volume",
    "list_inputs",
    "read_any",
    "read_image",
    "read_nifti",
    "read_volume",
    "write_image",
    "write_nifti",
    "write_volume",
]
