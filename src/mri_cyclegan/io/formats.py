"""One reader/writer layer for every volume format: NIfTI, FreeSurfer MGH/MGZ (nibabel), NRRD and MetaImage
(.mha/.mhd, SimpleITK), DICOM series (pydicom). Each reader returns a :class:`Volume` in RAS world coordinates
with the format's own header; each writer keeps the affine and, when the header came from the same format, the
data type and metadata (values that the type cannot hold are written as float32 with a warning, never clipped).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError
from .atomic import atomic_path
from .nifti import load_nibabel, read_nifti, write_nifti
from .volume import Volume, checked_content

log = logging.getLogger(__name__)

NIFTI = (".nii", ".nii.gz")
MGH = (".mgz", ".mgh")
ITK = (".nrrd", ".nhdr", ".mha", ".mhd")
VOLUME_EXTENSIONS = NIFTI + MGH + ITK
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def volume_format(path: str | Path) -> str | None:
    """'nifti', 'mgh', 'itk' from the file name, or None."""
    name = str(path).lower()
    for fmt, exts in (("nifti", NIFTI), ("mgh", MGH), ("itk", ITK)):
        if name.endswith(exts):
            return fmt
    return None


def fit_dtype(arr: np.ndarray, dtype: np.dtype, path: Path) -> np.ndarray:
    """``arr`` rounded into the integer ``dtype`` (native byte order) when every value fits, else float32 with a warning."""
    dtype = np.dtype(dtype).newbyteorder("=")
    if not np.issubdtype(dtype, np.integer):
        return arr.astype(dtype if dtype.kind == "f" else np.float32)
    info = np.iinfo(dtype)
    raw = np.rint(arr.astype(np.float64))
    if raw.size and (raw.min() < info.min or raw.max() > info.max):
        log.warning("%s: values %.6g..%.6g do not fit %s; writing float32 instead of clipping", path, float(arr.min()), float(arr.max()), dtype)
        return arr.astype(np.float32)
    return raw.astype(dtype)


# ------------------------------------------------------------------ MGH / MGZ (FreeSurfer)
def read_mgh(path: Path) -> Volume:
    img, data = load_nibabel(path, "MGH")
    return Volume(data=data, affine=img.affine, header=img.header.copy(), path=path)


def write_mgh(path: Path, data: np.ndarray, affine: np.ndarray, header=None) -> Path:
    import nibabel as nib

    keep = header is not None and isinstance(header, nib.freesurfer.mghformat.MGHHeader)
    arr = fit_dtype(np.asarray(data, np.float32), header.get_data_dtype() if keep else np.float32, path)
    if arr.dtype not in (np.uint8, np.int16, np.int32, np.float32):
        arr = arr.astype(np.float32)
    img = nib.MGHImage(arr, affine)
    if keep:  # scan parameters (TR, flip angle, TE, TI) travel with the volume
        img.header["tr"], img.header["flip_angle"], img.header["te"], img.header["ti"] = (
            header["tr"], header["flip_angle"], header["te"], header["ti"])
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path


# ------------------------------------------------------------------ NRRD / MetaImage (SimpleITK)
def _sitk():
    try:
        import SimpleITK as sitk
    except ImportError:
        raise InputError("NRRD and MetaImage (.nrrd/.mha/.mhd) need SimpleITK: pip install 'mri-cyclegan[formats]'") from None
    return sitk


def read_itk(path: Path) -> Volume:
    sitk = _sitk()
    try:
        img = sitk.ReadImage(str(path))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else "unreadable"
        raise InputError(f"cannot read {path}: {first}") from None
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path} has {img.GetNumberOfComponentsPerPixel()} components per voxel; only greyscale volumes are supported")
    if img.GetDimension() != 3:
        raise InputError(f"{path} is {img.GetDimension()}D; only 3D volumes are supported (save 2D images as PNG/TIFF)")
    data = sitk.GetArrayFromImage(img).astype(np.float32).transpose(2, 1, 0)  # (z, y, x) -> (i, j, k)
    meta = {k: img.GetMetaData(k) for k in img.GetMetaDataKeys()}
    header = {"pixel_id": img.GetPixelID(), "metadata": meta, "format": "itk"}
    return Volume(data=data, affine=_itk_affine(img), header=header, path=path)


def _itk_affine(info) -> np.ndarray:
    """Voxel-to-RAS affine of a SimpleITK image or ImageFileReader (ITK works in LPS)."""
    lps = np.eye(4)
    lps[:3, :3] = np.array(info.GetDirection(), np.float64).reshape(3, 3) * np.array(info.GetSpacing())[None, :]
    lps[:3, 3] = info.GetOrigin()
    return LPS_TO_RAS @ lps


def write_itk(path: Path, data: np.ndarray, affine: np.ndarray, header=None) -> Path:
    sitk = _sitk()
    keep = isinstance(header, dict) and header.get("format") == "itk"
    dtype = np.dtype(sitk.GetArrayViewFromImage(sitk.Image(1, 1, 1, header["pixel_id"])).dtype) if keep else np.dtype(np.float32)
    arr = fit_dtype(np.asarray(data, np.float32), dtype, path)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr.transpose(2, 1, 0)))
    lps = np.linalg.inv(LPS_TO_RAS) @ np.asarray(affine, np.float64)
    spacing = np.sqrt((lps[:3, :3] ** 2).sum(0))
    img.SetSpacing([float(s) for s in spacing])
    img.SetDirection([float(v) for v in (lps[:3, :3] / spacing[None, :]).ravel()])
    img.SetOrigin([float(v) for v in lps[:3, 3]])
    if keep:
        for k, v in header["metadata"].items():
            if not k.startswith(("ITK_", "NRRD_space", "NRRD_kinds", "NRRD_type", "NRRD_dimension", "NRRD_sizes", "NRRD_encoding")):
                img.SetMetaData(k, v)
    compress = str(path).lower().endswith((".nrrd", ".mha"))
    if str(path).lower().endswith((".mhd", ".nhdr")):  # header + data file: both written under their final names
        _write_detached(sitk, img, Path(path))
        return path
    with atomic_path(path) as tmp:
        sitk.WriteImage(img, str(tmp), useCompression=compress)
    return path


def _write_detached(sitk, img, path: Path) -> None:
    """A .mhd/.nhdr names its data file inside: write both into a temporary folder under their final names,
    then move the data file first and the header last (a reader never sees a header without its data)."""
    import os
    import shutil
    import tempfile

    from .atomic import TMP_PREFIX, ensure_parent

    ensure_parent(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=TMP_PREFIX))
    try:
        sitk.WriteImage(img, str(tmp / path.name))
        for f in sorted(tmp.iterdir(), key=lambda f: f.name == path.name):
            os.replace(f, path.parent / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ dispatch
def read_volume(path: str | Path) -> Volume:
    """Any supported volume file, or the DICOM series that a DICOM file belongs to."""
    p = Path(path)
    fmt = volume_format(p)
    if fmt == "nifti":
        return read_nifti(p)  # checks its own content
    if fmt == "mgh":
        vol = read_mgh(p)
    elif fmt == "itk":
        vol = read_itk(p)
    else:
        from .dicom import read_dicom_series

        vol = read_dicom_series(p)
    vol.data = checked_content(vol.data, str(p))
    return vol


def read_affine(path: str | Path) -> np.ndarray:
    """The voxel-to-RAS affine of a volume without reading its voxels where the format allows (DICOM: the series)."""
    p = Path(path)
    fmt = volume_format(p)
    if fmt in ("nifti", "mgh"):
        import nibabel as nib

        try:
            return nib.load(str(p)).affine
        except Exception as e:  # noqa: BLE001 -- any unreadable header is the user's file
            raise InputError(f"cannot read {p}: {e}; the file is corrupt/truncated or not what its name says") from None
    if fmt == "itk":
        sitk = _sitk()
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(p))
        try:
            reader.ReadImageInformation()
        except RuntimeError as e:
            raise InputError(f"cannot read {p}: {str(e).strip().splitlines()[-1] if str(e).strip() else 'unreadable'}") from None
        if reader.GetDimension() != 3:
            raise InputError(f"{p} is {reader.GetDimension()}D; only 3D volumes are supported (save 2D images as PNG/TIFF)")
        return _itk_affine(reader)
    return read_volume(p).affine


def write_volume(path: str | Path, volume: Volume) -> Path:
    """Write ``volume`` in the format named by ``path``'s extension, keeping its affine (and its header where
    the header is of that format)."""
    import nibabel as nib

    p = Path(path)
    fmt = volume_format(p)
    if fmt == "nifti":
        header = volume.header if isinstance(volume.header, nib.Nifti1Header) else None
        return write_nifti(p, volume.data, volume.affine, header)
    if fmt == "mgh":
        return write_mgh(p, volume.data, volume.affine, volume.header)
    if fmt == "itk":
        return write_itk(p, volume.data, volume.affine, volume.header)
    raise InputError(f"cannot write a volume as {p}; name it .nii.gz, .mgz, .nrrd or .mha")
