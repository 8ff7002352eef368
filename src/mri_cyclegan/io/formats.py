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
from .geometry import LPS_TO_RAS
from .nifti import load_nibabel, read_nifti, write_nifti
from .volume import Volume, check_affine, check_header_size, checked_content

log = logging.getLogger(__name__)

NIFTI = (".nii", ".nii.gz")
MGH = (".mgz", ".mgh")
ITK = (".nrrd", ".nhdr", ".mha", ".mhd")
VOLUME_EXTENSIONS = NIFTI + MGH + ITK


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


ITK_BYTES = {"MET_UCHAR": 1, "MET_CHAR": 1, "MET_USHORT": 2, "MET_SHORT": 2, "MET_UINT": 4, "MET_INT": 4, "MET_FLOAT": 4,
             "MET_ULONG": 8, "MET_LONG": 8, "MET_DOUBLE": 8, "MET_ULONG_LONG": 8, "MET_LONG_LONG": 8}
NRRD_BYTES = {**dict.fromkeys(("uchar", "unsigned char", "uint8", "uint8_t", "signed char", "char", "int8", "int8_t"), 1),
              **dict.fromkeys(("short", "short int", "signed short", "int16", "int16_t", "ushort", "unsigned short", "uint16", "uint16_t"), 2),
              **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"), 4),
              **dict.fromkeys(("longlong", "long long", "int64", "int64_t", "ulonglong", "unsigned long long", "uint64", "uint64_t", "double"), 8)}


def _header_fields(path: Path, sep: str) -> dict[str, str]:
    """Key/value lines of a text header (.mhd: 'Key = value'; .nhdr: 'key: value'), keys lower-cased; reads at most
    64 KiB (a header is small; anything else is not a header)."""
    with open(path, "rb") as f:
        text = f.read(65536).decode("latin-1")
    fields = {}
    for line in text.splitlines():
        key, found, value = line.partition(sep)
        if found and not line.startswith("#"):
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def check_detached(path: Path) -> None:
    """A .mhd/.nhdr names its data file inside. It must be one plain file in the header's own folder (no absolute path,
    no '..', no symlink out of the folder, no FIFO or device), and, when stored uncompressed, at least as large as the
    header's size says, all checked before a byte of it is read; otherwise one line."""
    import os
    import stat

    mhd = path.name.lower().endswith(".mhd")
    fields = _header_fields(path, "=" if mhd else ":")
    value = fields.get("elementdatafile") if mhd else fields.get("data file", fields.get("datafile"))
    if value is None:
        raise InputError(f"{path}: the header names no data file ({'ElementDataFile' if mhd else 'data file'}); the file is incomplete")
    if mhd and value.upper() == "LOCAL":
        return
    if value.upper().startswith("LIST") or "%" in value or len(value.split()) > 1:
        raise InputError(f"{path}: the header spreads its data over several files ({value!r}); only one data file is supported")
    ref = Path(value)
    folder = path.parent.resolve()
    target = (path.parent / ref).resolve()
    if ref.is_absolute() or ".." in ref.parts or not target.is_relative_to(folder):
        raise InputError(f"{path}: its data file {value!r} lies outside the header's folder; only a data file beside the header is read")
    try:
        st = os.stat(target)
    except OSError:
        raise InputError(f"{path}: its data file {value!r} is missing; copy it next to the header") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: its data file {value!r} is not a regular file; only a data file beside the header is read")
    if mhd:
        dims, nbytes = fields.get("dimsize", ""), ITK_BYTES.get(fields.get("elementtype", "").upper())
        channels = fields.get("elementnumberofchannels", "1")
        compressed = fields.get("compresseddata", "false").lower() == "true"
    else:
        dims, nbytes = fields.get("sizes", ""), NRRD_BYTES.get(fields.get("type", "").lower())
        channels, compressed = "1", fields.get("encoding", "raw").lower() not in ("raw",)
    try:
        shape = [int(d) for d in dims.split()]
        n_channels = int(channels)
    except ValueError:
        raise InputError(f"{path}: its header gives an unreadable size ({dims!r}); the file is corrupt") from None
    if shape:
        check_header_size(shape, nbytes or 4, str(path))
    if shape and nbytes and not compressed:
        need = int(np.prod(np.array(shape, dtype=object))) * nbytes * n_channels
        if st.st_size < need:
            raise InputError(f"{path}: its data file {value!r} holds {st.st_size} bytes, the header needs {need}; the data file is "
                             "truncated or belongs to another header")


def read_itk(path: Path) -> Volume:
    sitk = _sitk()
    if str(path).lower().endswith((".mhd", ".nhdr")):
        check_detached(path)
    reader = _itk_info(sitk, path)
    check_header_size(reader.GetSize(), 8, str(path))
    if reader.GetDimension() == 3:
        check_affine(_itk_affine(reader), str(path))
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


def _itk_info(sitk, path: Path):
    """An ImageFileReader holding the header information only (size, spacing, direction): no voxels read."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as e:
        raise InputError(f"cannot read {path}: {str(e).strip().splitlines()[-1] if str(e).strip() else 'unreadable'}") from None
    return reader


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
        for f in tmp.iterdir():  # a data file already there is replaced only when it is the replaced header's own
            dest = path.parent / f.name
            if f.name != path.name and (dest.exists() or dest.is_symlink()) and f.name not in own_data_files(path):
                raise InputError(f"cannot write {path}: its data file {dest} already exists and is not that header's own (another "
                                 "volume's data would be replaced); choose another output name")
        for f in sorted(tmp.iterdir(), key=lambda f: f.name == path.name):
            os.replace(f, path.parent / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def own_data_files(header: Path) -> set[str]:
    """Names of the data files an existing .mhd/.nhdr header at ``header`` uses (empty if there is none)."""
    if not header.is_file():
        return set()
    fields = _header_fields(header, "=" if header.name.lower().endswith(".mhd") else ":")
    value = fields.get("elementdatafile") or fields.get("data file") or fields.get("datafile") or ""
    return {value} if value and "/" not in value and "\\" not in value else set()


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
    check_affine(vol.affine, str(p))
    vol.data = checked_content(vol.data, str(p))
    return vol


def read_affine(path: str | Path) -> np.ndarray:
    """The voxel-to-RAS affine of a volume without reading its voxels where the format allows (DICOM: the series)."""
    p = Path(path)
    fmt = volume_format(p)
    if fmt in ("nifti", "mgh"):
        import nibabel as nib

        try:
            affine = nib.load(str(p)).affine
        except Exception as e:  # noqa: BLE001 -- any unreadable header is the user's file
            raise InputError(f"cannot read {p}: {e}; the file is corrupt/truncated or not what its name says") from None
        check_affine(affine, str(p))
        return affine
    if fmt == "itk":
        if str(p).lower().endswith((".mhd", ".nhdr")):
            check_detached(p)
        reader = _itk_info(_sitk(), p)
        if reader.GetDimension() != 3:
            raise InputError(f"{p} is {reader.GetDimension()}D; only 3D volumes are supported (save 2D images as PNG/TIFF)")
        affine = _itk_affine(reader)
        check_affine(affine, str(p))
        return affine
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


def write_map(path: str | Path, data: np.ndarray, like: Volume, description: str = "uncertainty (mri-cyclegan)") -> Path:
    """A float32 map (an uncertainty, an error) on the grid of ``like`` in the format named by ``path``: the affine
    kept, and a NIfTI header's units, codes and shape kept, with the values stored as float32 without scaling."""
    import nibabel as nib

    p = Path(path)
    if volume_format(p) == "nifti" and isinstance(like.header, nib.Nifti1Header):
        hdr = like.header.copy()
        hdr.set_data_dtype(np.float32)
        hdr.set_slope_inter(np.nan, np.nan)
        hdr["descrip"] = description.encode()[:80]
        return write_nifti(p, data, like.affine, hdr)
    return write_volume(p, Volume(data=np.asarray(data, np.float32), affine=like.affine, header=None, path=None))
