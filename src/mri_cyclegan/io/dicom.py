"""DICOM series in, NIfTI (default) or a synthetic DICOM series out, through pydicom.

A series is the set of files in one folder sharing a SeriesInstanceUID (as scanners and PACS export them; any
file names). Slices are sorted by their position along the slice normal; the affine comes from
ImagePositionPatient / ImageOrientationPatient / PixelSpacing and the step between the first and last slice
(DICOM's LPS turned into RAS, as nibabel and dcm2niix do). RescaleSlope/Intercept are applied per slice.
Enhanced (multi-frame) files are read from their functional groups. Anything that would make the geometry a
guess (a missing slice, uneven spacing, several images at one position, mixed orientations or sizes) stops with
one line naming the series.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .geometry import LPS_TO_RAS
from .volume import Volume

log = logging.getLogger(__name__)

DICOM_EXTENSIONS = (".dcm", ".ima", ".dicom")


def looks_like_dicom(path: Path) -> bool:
    """A DICOM Part 10 file: 'DICM' after the 128-byte preamble (the extension is not required)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _pydicom():
    try:
        import pydicom
    except ImportError:  # a core dependency; only a broken install lands here
        raise InputError("reading DICOM needs pydicom: pip install pydicom") from None
    return pydicom


MAX_INFLATED = 1 << 30  # bytes a deflate-compressed DICOM may inflate to (a few MB can claim many GB)
DEFLATED = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian


def _check_inflated_size(path: Path) -> None:
    """A deflated DICOM is inflated whole by pydicom before any header can be checked: measure its inflated size
    first, in bounded steps, and refuse one past :data:`MAX_INFLATED`."""
    import zlib

    with open(path, "rb") as f:
        head = f.read(132)
        if len(head) < 132 or head[128:132] != b"DICM":
            return
        try:
            meta = _pydicom().filereader.read_file_meta_info(str(path))
        except Exception:  # noqa: BLE001 -- dcmread reports a broken file itself
            return
        if str(getattr(meta, "TransferSyntaxUID", "")) != DEFLATED:
            return
        f.seek(132 + 12 + int(getattr(meta, "FileMetaInformationGroupLength", 0) or 0))
        inflater, total = zlib.decompressobj(-zlib.MAX_WBITS), 0
        while chunk := f.read(1 << 16):
            data = chunk
            while data:
                try:
                    total += len(inflater.decompress(data, 1 << 20))
                except zlib.error:
                    return  # not valid deflate: dcmread says so
                data = inflater.unconsumed_tail
                if total > MAX_INFLATED:
                    raise InputError(f"DICOM {path} is deflate-compressed to {path.stat().st_size:,} bytes but inflates past "
                                     f"{MAX_INFLATED:,}; it is not a single MR image (a decompression bomb?)")


def _dcmread(path: Path, **kwargs):
    _check_inflated_size(path)
    return _pydicom().dcmread(str(path), **kwargs)


def _read_header(path: Path):
    try:
        return _dcmread(path, stop_before_pixels=True)
    except InputError:
        raise
    except Exception as e:  # pydicom raises many types for broken files
        raise InputError(f"cannot read DICOM {path}: {e}") from None


def series_uid(path: Path) -> str:
    ds = _read_header(path)
    uid = getattr(ds, "SeriesInstanceUID", None)
    if not uid:
        raise InputError(f"DICOM {path} has no SeriesInstanceUID; it is not an image of a series")
    return str(uid)


def group_series(files: list[Path]) -> dict[Path, list[Path]]:
    """{first file of each series: all its files}, a series being (folder, SeriesInstanceUID). Files that are
    DICOM but hold no image (reports, presentation states) are skipped."""
    groups: dict[tuple[Path, str], list[Path]] = {}
    for f in files:
        ds = _read_header(f)
        if "Rows" not in ds or not getattr(ds, "SeriesInstanceUID", None):
            log.info("skipping %s: DICOM without an image", f)
            continue
        groups.setdefault((f.parent, str(ds.SeriesInstanceUID)), []).append(f)
    return {sorted(v)[0]: sorted(v) for v in groups.values()}


@functools.lru_cache(maxsize=64)
def _folder_series(folder: str, state: tuple[int, int]) -> dict[str, tuple[Path, ...]]:
    """{SeriesInstanceUID: files} of one folder, from one pass over its headers (cached per folder state, so a
    flat PACS export with many series is scanned once, not once per series)."""
    out: dict[str, list[Path]] = {}
    for f in sorted(Path(folder).iterdir()):
        if f.is_file() and not f.name.startswith(".") and (f.suffix.lower() in DICOM_EXTENSIONS or looks_like_dicom(f)):
            try:
                out.setdefault(series_uid(f), []).append(f)
            except InputError:
                continue
    return {k: tuple(v) for k, v in out.items()}


def series_files(path: Path) -> list[Path]:
    """Every file of the series that ``path`` (one of its files) belongs to, from the same folder."""
    folder = path.parent
    import os

    state = (folder.stat().st_mtime_ns, len(os.listdir(folder)))  # a changed folder is scanned again
    return list(_folder_series(str(folder), state).get(series_uid(path), ()))


def series_name(path: Path) -> str:
    """A file-name-safe name for the series of ``path``: '<SeriesNumber>_<SeriesDescription>' or the file stem."""
    ds = _read_header(path)
    parts = [str(getattr(ds, "SeriesNumber", "") or ""), str(getattr(ds, "SeriesDescription", "") or "")]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", "_".join(p for p in parts if p)).strip("_.")
    return name or path.stem


@dataclass
class DicomHeader:
    """What a translated series needs to be written back as DICOM: the source datasets (no pixel data) in
    volume order, and the series they came from."""

    datasets: list = field(default_factory=list)
    multi_frame: bool = False
    source: str = ""


def _floats(value: Any, n: int, what: str, path: Path) -> np.ndarray:
    try:
        arr = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.array([])
    if arr.size != n or not np.isfinite(arr).all():
        raise InputError(f"DICOM {path}: {what} is missing or malformed ({value!r}); the geometry cannot be known")
    return arr


def _affine(iop: np.ndarray, spacing: np.ndarray, first: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Voxel (column i, row j, slice k) -> RAS mm. DICOM: position = IPP + i*dc*X + j*dr*Y (X, Y from IOP)."""
    x, y = iop[:3], iop[3:]
    lps = np.eye(4)
    lps[:3, 0] = x * spacing[1]  # PixelSpacing = (between rows, between columns)
    lps[:3, 1] = y * spacing[0]
    lps[:3, 2] = step
    lps[:3, 3] = first
    return LPS_TO_RAS @ lps


def _check_steps(positions: np.ndarray, normal: np.ndarray, label: str) -> np.ndarray:
    """Positions sorted along ``normal`` -> the mean step vector; refuses gaps and uneven spacing."""
    if len(positions) == 1:
        return normal.copy()
    d = positions @ normal
    gaps = np.diff(d)
    if (np.abs(gaps) < 1e-3).any():
        raise InputError(
            f"DICOM series {label} has several images at the same position (multi-echo, repeated or dynamic "
            "acquisition?); export each echo/time point as its own series"
        )
    med = float(np.median(gaps))
    if (gaps > 1.5 * med).any():
        k = int(np.argmax(gaps))
        raise InputError(
            f"DICOM series {label}: slice missing between positions {d[k]:.2f} and {d[k + 1]:.2f} mm "
            f"(gap {gaps[k]:.2f} mm, usual {med:.2f} mm); re-export the complete series"
        )
    if np.abs(gaps - med).max() > max(0.01 * med, 1e-3):
        raise InputError(f"DICOM series {label} has uneven slice spacing ({gaps.min():.3f}..{gaps.max():.3f} mm); resample it first")
    return (positions[-1] - positions[0]) / (len(positions) - 1)


def _check_geometry(iop: np.ndarray, spacing: np.ndarray, label: str) -> None:
    """ImageOrientationPatient: two unit vectors at right angles; PixelSpacing: positive. Anything else would give a
    mirrored or wrongly scaled volume, so it is refused."""
    x, y = iop[:3], iop[3:]
    if abs(np.linalg.norm(x) - 1) > 1e-3 or abs(np.linalg.norm(y) - 1) > 1e-3 or abs(float(x @ y)) > 1e-3:
        raise InputError(f"DICOM {label}: ImageOrientationPatient {np.round(iop, 4).tolist()} is not two orthogonal unit vectors; "
                         "the header is corrupt")
    if not (spacing > 0).all():
        raise InputError(f"DICOM {label}: PixelSpacing {spacing.tolist()} must be positive; the header is corrupt")


def _slope_intercept(src, label: str) -> tuple[float, float]:
    """RescaleSlope/Intercept of a dataset or functional-group item; a slope of 0 (all pixels one value) is refused."""
    slope = float(getattr(src, "RescaleSlope", 1) if getattr(src, "RescaleSlope", None) not in (None, "") else 1)
    inter = float(getattr(src, "RescaleIntercept", 0) or 0)
    if not (np.isfinite(slope) and np.isfinite(inter)) or slope == 0:
        raise InputError(f"DICOM {label}: RescaleSlope {slope} / RescaleIntercept {inter} cannot map stored values to intensities")
    return slope, inter


def _check_pixels_size(ds, frames: int, label: str) -> None:
    """Rows x Columns x frames from the header, bounded before any pixel is decoded (or decompressed)."""
    from .volume import check_header_size

    check_header_size((int(getattr(ds, "Columns", 0) or 0), int(getattr(ds, "Rows", 0) or 0), max(frames, 1)), 4, f"DICOM {label}")


def _rescale(ds, arr: np.ndarray, label: str = "") -> np.ndarray:
    slope, inter = _slope_intercept(ds, label or "series")
    return arr.astype(np.float32) * slope + inter


def _pixels(ds, path: Path) -> np.ndarray:
    try:
        return ds.pixel_array
    except Exception as e:  # compressed transfer syntax without a decoder, truncated data, ...
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", syntax)
        raise InputError(
            f"cannot decode the pixels of DICOM {path} ({name}): {e}; install a decoder (pip install pylibjpeg "
            "pylibjpeg-libjpeg pylibjpeg-openjpeg) or re-export uncompressed"
        ) from None


def read_dicom_series(path: str | Path) -> Volume:
    """The series that ``path`` (any of its files) belongs to, as a 3D Volume in RAS with a DicomHeader."""
    pydicom = _pydicom()
    p = Path(path)
    files = series_files(p) if p.is_file() else []
    if not files:
        raise InputError(f"{p} is not a DICOM image file")
    label = f"{series_name(files[0])} in {p.parent}"
    datasets = []
    for f in files:
        try:
            datasets.append(_dcmread(f))
        except InputError:
            raise
        except Exception as e:
            raise InputError(f"cannot read DICOM {f}: {e}") from None
    if len(datasets) == 1 and int(getattr(datasets[0], "NumberOfFrames", 1) or 1) > 1:
        return _read_multi_frame(datasets[0], files[0], label)

    for ds, f in zip(datasets, files):
        for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if tag not in ds:
                raise InputError(f"DICOM {f} has no {tag}; it is not a slice of a volume with known geometry")
    iops = np.array([_floats(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", f) for ds, f in zip(datasets, files)])
    if np.abs(iops - iops[0]).max() > 1e-4:
        raise InputError(f"DICOM series {label} mixes slice orientations (a localizer?); it is not one volume")
    sizes = {(int(ds.Rows), int(ds.Columns)) for ds in datasets}
    if len(sizes) > 1:
        raise InputError(f"DICOM series {label} mixes image sizes {sorted(sizes)}; it is not one volume")
    spacings = np.array([_floats(ds.PixelSpacing, 2, "PixelSpacing", f) for ds, f in zip(datasets, files)])
    if np.abs(spacings - spacings[0]).max() > 1e-4:
        raise InputError(f"DICOM series {label} mixes pixel spacings; it is not one volume")
    iop = iops[0]
    _check_geometry(iop, spacings[0], label)
    _check_pixels_size(datasets[0], len(datasets), label)
    normal = np.cross(iop[:3], iop[3:])
    positions = np.array([_floats(ds.ImagePositionPatient, 3, "ImagePositionPatient", f) for ds, f in zip(datasets, files)])
    order = np.argsort(positions @ normal, kind="stable")
    datasets = [datasets[i] for i in order]
    positions = positions[order]
    if len(datasets) == 1:
        thickness = float(getattr(datasets[0], "SpacingBetweenSlices", 0) or getattr(datasets[0], "SliceThickness", 0) or 1.0)
        step = normal * thickness
    else:
        step = _check_steps(positions, normal, label)
    slices = [_rescale(ds, _pixels(ds, f), str(f)) for ds, f in zip(datasets, [files[i] for i in order])]
    if slices[0].ndim != 2:
        raise InputError(f"DICOM series {label} holds colour or multi-sample images; only greyscale MRI is supported")
    data = np.stack(slices, -1).transpose(1, 0, 2)  # (rows, cols, k) -> (cols i, rows j, k)
    affine = _affine(iop, spacings[0], positions[0], step)
    for ds in datasets:
        ds.PixelData = b""  # keep the tags, drop the pixels
    return Volume(data=data, affine=affine, header=DicomHeader(datasets, False, label), path=p)


def _read_multi_frame(ds, path: Path, label: str) -> Volume:
    """Enhanced MR (one file, many frames): geometry from the shared and per-frame functional groups."""
    try:
        shared = ds.SharedFunctionalGroupsSequence[0]
        frames = ds.PerFrameFunctionalGroupsSequence
    except (AttributeError, IndexError):
        raise InputError(f"DICOM {path} has several frames but no functional groups; cannot place them in space") from None

    def item(group, seq: str, tag: str):
        for g in (group, shared):
            items = getattr(g, seq, None)
            if items and getattr(items[0], tag, None) is not None:
                return getattr(items[0], tag)
        raise InputError(f"DICOM {path}: no {tag} in the functional groups; the geometry cannot be known")

    iop = _floats(item(frames[0], "PlaneOrientationSequence", "ImageOrientationPatient"), 6, "ImageOrientationPatient", path)
    spacing = _floats(item(frames[0], "PixelMeasuresSequence", "PixelSpacing"), 2, "PixelSpacing", path)
    n_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if len(frames) != n_frames:
        raise InputError(f"DICOM {path}: NumberOfFrames is {n_frames} but the per-frame groups describe {len(frames)} frames; "
                         "the file is inconsistent (frames would be dropped or misplaced)")
    _check_geometry(iop, spacing, str(path))
    _check_pixels_size(ds, n_frames, str(path))
    positions = np.array([_floats(item(fr, "PlanePositionSequence", "ImagePositionPatient"), 3, "ImagePositionPatient", path) for fr in frames])
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort(positions @ normal, kind="stable")
    step = _check_steps(positions[order], normal, label)
    pixels = _pixels(ds, path).astype(np.float32)  # (frames, rows, cols)
    if pixels.ndim != 3:
        raise InputError(f"DICOM {path}: unexpected multi-frame pixel shape {pixels.shape}")
    out = []
    for i in order:
        fr = frames[i]
        pvt = getattr(fr, "PixelValueTransformationSequence", None) or getattr(shared, "PixelValueTransformationSequence", None)
        slope, inter = _slope_intercept(pvt[0] if pvt else ds, str(path))
        out.append(pixels[i] * slope + inter)
    data = np.stack(out, -1).transpose(1, 0, 2)
    affine = _affine(iop, spacing, positions[order][0], step)
    ds.PixelData = b""
    return Volume(data=data, affine=affine, header=DicomHeader([ds], True, label), path=path)


# What a written MR image needs and a sparse source may lack (checked by dciodvfy in the tests). Type 1 attributes get
# a value that says as little as possible; Type 2/2C ones are present and empty ("unknown").
FILL_TYPE1 = {"Modality": "MR", "ScanningSequence": "RM", "SequenceVariant": "NONE"}  # RM: research mode
FILL_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "ReferringPhysicianName",
              "StudyID", "AccessionNumber", "Laterality", "PatientPosition", "PositionReferenceIndicator", "Manufacturer",
              "ScanOptions", "MRAcquisitionType", "RepetitionTime", "EchoTime", "EchoTrainLength")
RESCALE_TAGS = ("RescaleSlope", "RescaleIntercept", "RescaleType")
MIN_INTEGER_SPAN = 256  # a translation spanning at least this many units is stored as integers (rounding error <= 0.2 %)


def pixel_encoding(data: np.ndarray) -> tuple[np.dtype, float, float]:
    """How a series of real values is stored: (dtype, slope, intercept). MR images carry no Modality LUT, so values that
    fit unsigned or signed 16-bit integers after rounding (and span at least ``MIN_INTEGER_SPAN`` units, or are integers
    already) are stored as they are (slope 1: viewers show them right); only values that do not fit, or span too few
    units to round, get an int16 encoding with a RescaleSlope / RescaleIntercept (nothing clipped)."""
    lo, hi = float(data.min()), float(data.max())
    rounded = np.rint(data)
    integral = hi - lo >= MIN_INTEGER_SPAN or np.allclose(data, rounded)
    if integral and rounded.min() >= 0 and rounded.max() <= 65535:
        return np.dtype(np.uint16), 1.0, 0.0
    if integral and rounded.min() >= -32768 and rounded.max() <= 32767:
        return np.dtype(np.int16), 1.0, 0.0
    inter = 0.0 if lo >= -32768 and hi <= 32767 else lo
    span = max(abs(hi - inter), abs(lo - inter), 1e-12)
    return np.dtype(np.int16), span / 32767.0, inter


def write_dicom_series(folder: str | Path, volume: Volume, description: str) -> Path:
    """A new series beside nothing else: one file per slice, copying the source's patient/study tags, with a
    new SeriesInstanceUID and SOPInstanceUIDs, ImageType DERIVED, and ``description`` (which says synthetic).
    Pixels as :func:`pixel_encoding` chooses (16-bit integers without a RescaleSlope whenever they fit); attributes a
    valid MR image needs but the source lacks are filled (:data:`FILL_TYPE1`, :data:`FILL_TYPE2`)."""
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from .atomic import atomic_dir

    hdr = volume.header
    if not isinstance(hdr, DicomHeader) or hdr.multi_frame:
        raise InputError("DICOM output needs a classic (one file per slice) DICOM series as input; write NIfTI instead")
    data = np.asarray(volume.data, np.float32).transpose(1, 0, 2)  # (rows, cols, k)
    if data.shape[2] != len(hdr.datasets):
        raise ValueError(f"{data.shape[2]} slices for {len(hdr.datasets)} source datasets")
    dtype, slope, inter = pixel_encoding(data)
    if slope != 1.0 or inter != 0.0:
        log.info("%s: values %.6g..%.6g stored as int16 with RescaleSlope %.6g / RescaleIntercept %.6g", folder, float(data.min()),
                 float(data.max()), slope, inter)
    info = np.iinfo(dtype)
    series = generate_uid()
    shared = {"FrameOfReferenceUID": generate_uid(), "StudyInstanceUID": generate_uid()}  # one per series when missing
    out = Path(folder)
    with atomic_dir(out) as tmp:
        for k, src in enumerate(hdr.datasets):
            ds = copy.deepcopy(src)
            raw = np.clip(np.rint((data[:, :, k] - inter) / slope), info.min, info.max).astype(dtype)  # in range by construction
            sop = generate_uid()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPInstanceUID = sop
            ds.SOPInstanceUID = sop
            ds.SeriesInstanceUID = series
            ds.SeriesDescription = description[:64]
            ds.SeriesNumber = int(getattr(src, "SeriesNumber", 0) or 0) + 1000
            ds.ImageType = ["DERIVED", "SECONDARY", "OTHER", "SYNTHETIC"]
            ds.DerivationDescription = f"{description} (mri-cyclegan); not for diagnosis"[:1024]
            for tag, value in (*shared.items(), *FILL_TYPE1.items()):
                if not getattr(ds, tag, None):
                    setattr(ds, tag, value)
            for tag in FILL_TYPE2:
                if tag not in ds:
                    setattr(ds, tag, None)
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, int(dtype == np.int16)
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            for tag in ("WindowCenter", "WindowWidth", "SmallestImagePixelValue", "LargestImagePixelValue", *RESCALE_TAGS):
                if tag in ds:
                    delattr(ds, tag)
            if slope != 1.0 or inter != 0.0:
                ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}"[:16], f"{inter:.10g}"[:16]
            ds.PixelData = raw.tobytes()
            ds.save_as(str(tmp / f"slice_{k + 1:04d}.dcm"), enforce_file_format=True)
    return out
