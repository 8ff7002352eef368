"""Readers and writers around one ``Volume`` (float32 data + affine + header)."""

from .files import IMAGE_EXTENSIONS, NIFTI_EXTENSIONS, is_image, is_nifti, list_inputs
from .images import ImageInfo, read_image, write_image
from .nifti import read_nifti, write_nifti
from .volume import Volume

__all__ = [
    "IMAGE_EXTENSIONS",
    "NIFTI_EXTENSIONS",
    "ImageInfo",
    "Volume",
    "is_image",
    "is_nifti",
    "list_inputs",
    "read_image",
    "read_nifti",
    "write_image",
    "write_nifti",
]
