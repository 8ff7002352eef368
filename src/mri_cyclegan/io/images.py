"""2D images (PNG, JPEG, TIFF, BMP): one channel, float32, bit depth remembered for writing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .files import IMAGE_EXTENSIONS

_RGB_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma


@dataclass(frozen=True)
class ImageInfo:
    """How the file stored its pixels, so an output can be written the same way."""

    dtype: str  # "uint8", "uint16", "int32" or "float32"
    shape: tuple[int, int]


def read_image(path: str | Path) -> tuple[np.ndarray, ImageInfo]:
    """Read any 8/16-bit, grayscale/RGB/RGBA/palette image as a 2D float32 array (full precision kept)."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with Image.open(p) as img:
            img.load()
            mode = img.mode
            if mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV"):
                img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
                mode = img.mode
            arr = np.array(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise InputError(f"cannot read image {p}: {e}; the file is not an image or is corrupt/truncated") from None
    if mode in ("RGB", "RGBA", "LA"):
        if mode == "LA":
            arr = arr[..., 0]
            dtype = "uint8"
        else:
            dtype = str(arr.dtype)
            arr = arr[..., :3].astype(np.float32) @ _RGB_WEIGHTS
    else:  # L, I;16*, I, F
        dtype = {"uint8": "uint8", "uint16": "uint16", "int32": "int32", "float32": "float32"}.get(str(arr.dtype), "float32")
        if mode.startswith("I;16") or (mode == "I" and arr.size and 0 <= arr.min() and arr.max() <= 65535):
            dtype = "uint16"
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"image {p} has unsupported shape {arr.shape}; expected a 2D image")
    return arr, ImageInfo(dtype=dtype, shape=(int(arr.shape[0]), int(arr.shape[1])))


def to_dtype(arr: np.ndarray, dtype: str) -> np.ndarray:
    """Round and clip float intensities into the integer range of ``dtype`` (floats pass through)."""
    if dtype.startswith("float"):
        return arr.astype(np.float32)
    info = np.iinfo(dtype)
    return np.clip(np.rint(arr), info.min, info.max).astype(dtype)


def write_image(path: str | Path, arr: np.ndarray, dtype: str = "uint8") -> None:
    """Write a 2D array atomically in the given bit depth; the format follows the file extension."""
    from PIL import Image

    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise InputError(f"cannot write image {p}: unsupported extension; name the output {', '.join(IMAGE_EXTENSIONS)} (or a folder)")
    if ext in (".jpg", ".jpeg", ".bmp") and dtype != "uint8":
        dtype = "uint8"  # these formats hold 8 bits only
    if ext == ".png" and dtype in ("int32", "float32"):
        dtype = "uint16"
    img = Image.fromarray(to_dtype(np.asarray(arr), dtype))  # uint8 -> L, uint16 -> I;16, int32 -> I, float32 -> F
    with atomic_path(p) as tmp:
        img.save(tmp, format=Image.registered_extensions()[ext])
