"""2D images (PNG, JPEG, TIFF, BMP): one channel, float32, bit depth remembered for writing."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .files import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

_RGB_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma
MAX_PIXELS = 150_000_000  # larger images are refused (a "decompression bomb" claims hundreds of millions of pixels)

# pixel types each format holds without loss; anything else is refused rather than clipped
FORMAT_DTYPES = {
    ".png": ("uint8", "uint16"),
    ".jpg": ("uint8",),
    ".jpeg": ("uint8",),
    ".bmp": ("uint8",),
    ".tif": ("uint8", "uint16", "int32", "float32"),
    ".tiff": ("uint8", "uint16", "int32", "float32"),
}
_DEPTH = {"uint8": "8-bit", "uint16": "16-bit", "int32": "32-bit integer", "float32": "32-bit float"}


@dataclass(frozen=True)
class ImageInfo:
    """How the file stored its pixels, so an output can be written the same way."""

    dtype: str  # "uint8", "uint16", "int32" or "float32"
    shape: tuple[int, int]


def read_image(path: str | Path) -> tuple[np.ndarray, ImageInfo]:
    """Read any 8/16-bit, grayscale/RGB/RGBA/palette image as a 2D float32 array (full precision kept).

    The EXIF orientation is applied (pixels come back as a viewer shows them). Non-finite pixels of float
    images become 0 with a warning; an image with no finite pixel, or more than MAX_PIXELS pixels, is refused.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(p) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise InputError(f"image {p} claims {w} x {h} pixels (more than {MAX_PIXELS:,}); refusing to decode it")
                frames = getattr(img, "n_frames", 1)
                if frames > 1:
                    raise InputError(f"image {p} holds {frames} pages/frames; only single-page images are translated (save the "
                                     "pages as separate files, or the stack as a NIfTI volume)")
                img.load()
                img = ImageOps.exif_transpose(img)
                mode = img.mode
                if mode in ("P", "PA", "1", "CMYK", "YCbCr", "LAB", "HSV"):
                    img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
                    mode = img.mode
                arr = np.array(img)
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        raise InputError(f"image {p} is too large to decode safely: {e}") from None
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
    finite = np.isfinite(arr)
    if not finite.all():
        if not finite.any():
            raise InputError(f"image {p} holds only NaN/inf pixels")
        log.warning("%s: %d NaN/inf pixel(s) read as 0", p, int((~finite).sum()))
        arr = np.where(finite, arr, 0.0).astype(np.float32)
    return arr, ImageInfo(dtype=dtype, shape=(int(arr.shape[0]), int(arr.shape[1])))


def check_writable(path: str | Path, dtype: str) -> None:
    """InputError unless ``path``'s format holds ``dtype`` pixels without loss (no silent bit-depth change)."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise InputError(f"cannot write image {p}: unsupported extension; name the output {', '.join(IMAGE_EXTENSIONS)} (or a folder)")
    if dtype not in FORMAT_DTYPES[ext]:
        keep = [e for e, kinds in FORMAT_DTYPES.items() if dtype in kinds and e != ".tiff"]
        raise InputError(
            f"cannot write {_DEPTH.get(dtype, dtype)} pixels to {p}: {ext} holds {' or '.join(_DEPTH[d] for d in FORMAT_DTYPES[ext])} only; "
            f"name the output {' or '.join(keep)} to keep the input's bit depth"
        )


def to_dtype(arr: np.ndarray, dtype: str, what: str = "image") -> np.ndarray:
    """Round float intensities into the integer range of ``dtype`` (floats pass through). Values outside the
    range cannot be stored: they are clipped with a warning that counts them."""
    if dtype.startswith("float"):
        return arr.astype(np.float32)
    info = np.iinfo(dtype)
    r = np.rint(arr)
    outside = int(((r < info.min) | (r > info.max)).sum())
    if outside:
        log.warning("%s: %d pixel(s) outside the %s range %d..%d were clipped", what, outside, dtype, info.min, info.max)
    return np.clip(r, info.min, info.max).astype(dtype)


def write_image(path: str | Path, arr: np.ndarray, dtype: str = "uint8") -> Path:
    """Write a 2D array atomically in the given bit depth; the format follows the file extension, which must hold
    that bit depth (see :func:`check_writable`). Returns the path written."""
    from PIL import Image

    p = Path(path)
    check_writable(p, dtype)
    img = Image.fromarray(to_dtype(np.asarray(arr), dtype, str(p)))  # uint8 -> L, uint16 -> I;16, int32 -> I, float32 -> F
    with atomic_path(p) as tmp:
        img.save(tmp, format=Image.registered_extensions()[p.suffix.lower()])
    return p
