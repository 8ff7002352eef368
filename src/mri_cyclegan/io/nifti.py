"""NIfTI volumes: read and write with affine and header (orientation helpers: :mod:`.geometry`)."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .volume import Volume, checked_content

log = logging.getLogger(__name__)

def load_nibabel(path: Path, kind: str):
    """(image, float32 data) of a nibabel-readable 3D volume (``kind`` 'NIfTI' or 'MGH'; a 4D file holding a
    single volume is squeezed). Raises InputError on unreadable files and other shapes."""
    import nibabel as nib

    from .volume import check_affine, check_header_size

    try:
        img = nib.load(str(path))
        shape = img.header.get_data_shape()
        stored = np.dtype(img.header.get_data_dtype())
        check_header_size(shape, stored.itemsize, f"{kind} {path}")
        if len(shape) > 3 and int(np.prod(shape[3:])) != 1:
            raise InputError(f"{kind} {path} has shape {tuple(shape)}; only 3D volumes are supported (split 4D series first)")
        if stored.kind == "c" or stored.names:
            raise InputError(f"{kind} {path} holds {stored} voxels (complex or RGB); only real greyscale volumes are supported")
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, zlib.error, ValueError) as e:
        raise InputError(f"cannot read {kind} {path}: {e}; the file is not {kind} or is corrupt/truncated") from None
    check_affine(img.affine, f"{kind} {path}")
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"{kind} {path} has shape {data.shape}; only 3D volumes are supported (split 4D series first)")
    return img, data


def read_nifti(path: str | Path) -> Volume:
    """Read a 3D NIfTI volume (a 4D one with a single volume is squeezed). Raises InputError on bad input."""
    p = Path(path)
    img, data = load_nibabel(p, "NIfTI")
    data = checked_content(data, f"NIfTI {p}")
    header = img.header.copy()  # nibabel moves scl_slope/scl_inter into the data proxy on load: put them back
    slope, inter = getattr(img.dataobj, "slope", 1.0), getattr(img.dataobj, "inter", 0.0)
    header.set_slope_inter(float(slope), float(inter))
    return Volume(data=data, affine=img.affine, header=header, path=p)


def _file_scaling(hdr) -> tuple[float, float]:
    """The header's scl_slope / scl_inter as numbers (NIfTI: slope 0 or NaN means 'no scaling')."""
    slope, inter = hdr.get_slope_inter() if hdr is not None else (None, None)
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    return slope, inter


def write_nifti(path: str | Path, data: np.ndarray, affine: np.ndarray, header=None) -> Path:
    """Write atomically, keeping affine and header (data type, scl_slope/scl_inter, pixdim, description,
    qform/sform codes, a trailing singleton 4th dimension). Returns the path written.

    Real values are stored exactly as the input file would: integer data types keep the file's own
    slope/intercept. When the values do not fit that type (e.g. a translation brighter than anything the
    source type could hold), the file is written as float32 instead and a warning says so; nothing is clipped.
    """
    import nibabel as nib

    p = Path(path)
    hdr = header.copy() if header is not None else None
    arr = np.asarray(data, dtype=np.float32)
    if hdr is not None:
        shape = tuple(hdr.get_data_shape())
        if len(shape) > arr.ndim and shape[: arr.ndim] == arr.shape and all(s == 1 for s in shape[arr.ndim :]):
            arr = arr.reshape(shape)  # e.g. (X, Y, Z, 1) in, (X, Y, Z, 1) out
    out_dtype = hdr.get_data_dtype() if hdr is not None else np.dtype(np.float32)
    slope, inter = _file_scaling(hdr)
    if np.issubdtype(out_dtype, np.integer):
        info = np.iinfo(out_dtype)
        raw = np.rint((arr.astype(np.float64) - inter) / slope)
        if raw.size and (raw.min() < info.min or raw.max() > info.max):
            log.warning(
                "%s: values %.6g..%.6g do not fit %s with slope %g / intercept %g; writing float32 instead of clipping",
                p, float(arr.min()), float(arr.max()), out_dtype, slope, inter,
            )
            hdr.set_data_dtype(np.float32)
            out, slope, inter = arr, 1.0, 0.0
        else:
            out = raw.astype(out_dtype)
    else:
        out, slope, inter = arr.astype(out_dtype), 1.0, 0.0
    img = nib.Nifti1Image(out, affine, header=hdr)
    space, time = img.header.get_xyzt_units()
    if space == "unknown":  # NIfTI readers assume mm; say so (the BIDS validator warns NIFTI_UNIT otherwise)
        img.header.set_xyzt_units("mm", time)
    img.header.set_slope_inter(slope, inter)  # stored values are raw: real = slope * raw + inter
    if hdr is not None:  # keep the file's own qform/sform codes
        for get, set_ in ((hdr.get_qform, img.set_qform), (hdr.get_sform, img.set_sform)):
            matrix, code = get(coded=True)
            if matrix is not None:
                set_(matrix, int(code))
    with atomic_path(p) as tmp:
        nib.save(img, tmp)
    return p
