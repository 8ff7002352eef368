"""DICOM series, MGH/MGZ, NRRD and MetaImage: read with the right geometry (checked against SimpleITK/GDCM and
nibabel, independent readers), translated end to end from the CLI, written back with the input's geometry."""

from __future__ import annotations

import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mri_cyclegan.errors import InputError
from mri_cyclegan.io import list_inputs, read_any

try:  # GDCM's reading is the reference for geometry; the DICOM reader itself needs only pydicom
    import SimpleITK as sitk
except ImportError:
    sitk = None
needs_sitk = pytest.mark.skipif(sitk is None, reason="SimpleITK (the [formats] extra) is not installed")
pydicom = pytest.importorskip("pydicom")

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    a = np.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


ORIENTATIONS = {  # ImageOrientationPatient (row cosine X, column cosine Y) in LPS
    "axial": (np.array([1.0, 0, 0]), np.array([0, 1.0, 0])),
    "sagittal": (np.array([0, 1.0, 0]), np.array([0, 0, -1.0])),
    "coronal": (np.array([1.0, 0, 0]), np.array([0, 0, -1.0])),
    "oblique": tuple(_rotation(np.array([1.0, 0.3, 0.2]), 17) @ v for v in (np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))),
}


def phantom(shape=(40, 36, 12), seed=0) -> np.ndarray:
    """(columns i, rows j, slices k) int16 with structure in every direction (an ellipsoid with a gradient)."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    inside = (i / 0.8) ** 2 + (j / 0.7) ** 2 + (k / 0.9) ** 2 < 1
    vol = inside * (300 + 400 * (i + 1) + 100 * k) + rng.normal(0, 5, shape)
    return np.clip(vol, 0, 3000).astype(np.int16)


def write_series(folder: Path, vol: np.ndarray, orientation="axial", spacing=(0.9, 0.8), thickness=2.5, origin=(-20.0, 15.0, 30.0),
                 series_uid=None, study_uid="1.2.826.0.1.3680043.8.498.1", number=3, description="T1 MPRAGE", slope=1.0, intercept=0.0,
                 skip=(), names="IM{:04d}", shuffle=True) -> np.ndarray:
    """One classic MR series (one file per slice, file names without extension, written in shuffled order).
    Returns the expected voxel-to-RAS affine."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    x, y = ORIENTATIONS[orientation]
    normal = np.cross(x, y)
    series_uid = series_uid or generate_uid()
    order = list(range(vol.shape[2]))
    if shuffle:
        random.Random(1).shuffle(order)
    for k in order:
        if k in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.Modality = "Phantom^Test", "P0001", "MR"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SeriesNumber, ds.SeriesDescription, ds.InstanceNumber = number, description, k + 1
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*x, *y)]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in np.array(origin) + k * thickness * normal]
        ds.PixelSpacing = [f"{spacing[0]}", f"{spacing[1]}"]
        ds.SliceThickness = f"{thickness}"
        ds.Rows, ds.Columns = vol.shape[1], vol.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope[k] if isinstance(slope, (list, tuple)) else slope}", f"{intercept}"
        ds.PixelData = np.ascontiguousarray(vol[:, :, k].T).astype(np.int16).tobytes()  # (rows, cols)
        ds.save_as(str(folder / names.format(k + 1)), enforce_file_format=True)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = x * spacing[1], y * spacing[0], normal * thickness, origin
    return LPS_TO_RAS @ lps


def sitk_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """GDCM's reading of the (only) series in ``folder``: (i, j, k) data and voxel-to-RAS affine."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    img = reader.Execute()
    return sitk_geometry(img)


def sitk_geometry(img) -> tuple[np.ndarray, np.ndarray]:
    lps = np.eye(4)
    lps[:3, :3] = np.array(img.GetDirection()).reshape(3, 3) * np.array(img.GetSpacing())[None, :]
    lps[:3, 3] = img.GetOrigin()
    return sitk.GetArrayFromImage(img).astype(np.float32).transpose(2, 1, 0), LPS_TO_RAS @ lps


@needs_sitk
@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_dicom_series_geometry_matches_gdcm(tmp_path, orientation):
    vol = phantom()
    expected = write_series(tmp_path / "nested" / "series", vol, orientation, slope=2.0, intercept=-100.0)
    [entry] = list_inputs(tmp_path)  # one entry for the whole series, found in a nested folder without extensions
    ours = read_any(entry)
    data, affine = sitk_series(tmp_path / "nested" / "series")
    np.testing.assert_allclose(ours.affine, expected, atol=1e-4)
    np.testing.assert_allclose(ours.affine, affine, atol=1e-3)
    np.testing.assert_allclose(ours.data, data, atol=1e-3)
    np.testing.assert_allclose(ours.data, vol * 2.0 - 100.0, atol=1e-3)  # rescale slope/intercept applied


def test_dicom_missing_slice_and_mixed_series(tmp_path):
    write_series(tmp_path / "gap", phantom(), skip=(5,))
    [entry] = list_inputs(tmp_path / "gap")
    with pytest.raises(InputError, match="slice missing"):
        read_any(entry)
    mixed = tmp_path / "mixed"  # two series in one flat folder, as a PACS export: each is its own volume
    write_series(mixed, phantom(seed=1), "axial", number=3, names="A{:03d}")
    write_series(mixed, phantom((30, 30, 8), seed=2), "sagittal", number=4, names="B{:03d}", thickness=1.5)
    (mixed / "notes.txt").write_text("not an image")
    entries = list_inputs(mixed)
    assert len(entries) == 2
    assert sorted(read_any(e).shape for e in entries) == [(30, 30, 8), (40, 36, 12)]


def test_dicom_same_position_twice_is_refused(tmp_path):
    from pydicom.uid import generate_uid

    uid = generate_uid()
    write_series(tmp_path / "s", phantom(), series_uid=uid, names="E1_{:03d}")
    write_series(tmp_path / "s", phantom(seed=3), series_uid=uid, names="E2_{:03d}")  # a second echo in the same series
    with pytest.raises(InputError, match="same position"):
        read_any(list_inputs(tmp_path / "s")[0])


@pytest.mark.parametrize("rescaled", [False, True])
def test_enhanced_multiframe_dicom(tmp_path, rescaled):
    """One Enhanced MR file with per-frame positions (frames stored in reverse order) reads as the classic series does;
    with ``rescaled``, each frame has its own RescaleSlope (and an intercept) in its PixelValueTransformationSequence."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedMRImageStorage, ExplicitVRLittleEndian, generate_uid

    vol = phantom()
    expected = write_series(tmp_path / "classic", vol, "oblique")
    x, y = ORIENTATIONS["oblique"]
    normal = np.cross(x, y)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = EnhancedMRImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = EnhancedMRImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "MR", generate_uid(), generate_uid()
    ds.Rows, ds.Columns, ds.NumberOfFrames = vol.shape[1], vol.shape[0], vol.shape[2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    po, pm = Dataset(), Dataset()
    po.ImageOrientationPatient = [f"{v:.6f}" for v in (*x, *y)]
    pm.PixelSpacing, pm.SliceThickness = ["0.9", "0.8"], "2.5"
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([po]), Sequence([pm])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    slopes = [0.5 + 0.25 * (k % 4) if rescaled else 1.0 for k in range(vol.shape[2])]
    intercept = -10.0 if rescaled else 0.0
    stored = np.stack([np.rint((vol[:, :, k] - intercept) / slopes[k]) for k in range(vol.shape[2])], 2)
    for k in reversed(range(vol.shape[2])):
        fr, pp, pv = Dataset(), Dataset(), Dataset()
        pp.ImagePositionPatient = [f"{v:.4f}" for v in np.array((-20.0, 15.0, 30.0)) + k * 2.5 * normal]
        pv.RescaleSlope, pv.RescaleIntercept, pv.RescaleType = f"{slopes[k]}", f"{intercept}", "US"
        fr.PlanePositionSequence, fr.PixelValueTransformationSequence = Sequence([pp]), Sequence([pv])
        frames.append(fr)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.ascontiguousarray(stored[:, :, ::-1].transpose(2, 1, 0)).astype(np.int16).tobytes()
    (tmp_path / "enhanced").mkdir()
    ds.save_as(str(tmp_path / "enhanced" / "mf.dcm"), enforce_file_format=True)
    ours = read_any(tmp_path / "enhanced" / "mf.dcm")
    np.testing.assert_allclose(ours.affine, expected, atol=1e-4)
    np.testing.assert_allclose(ours.data, stored * np.array(slopes)[None, None, :] + intercept, atol=1e-3)
    assert np.abs(ours.data - vol).max() <= max(slopes) / 2 + 1e-3


def _oblique_ras() -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = _rotation(np.array([0.2, 1.0, 0.4]), 23) @ np.diag([0.9, 1.1, 2.0])
    aff[:3, 3] = (12.0, -30.0, 7.5)
    return aff


@pytest.mark.parametrize("ext", [".mgz", ".mgh", pytest.param(".nrrd", marks=needs_sitk), pytest.param(".mha", marks=needs_sitk),
                                 pytest.param(".mhd", marks=needs_sitk)])
def test_volume_formats_read_with_their_geometry(tmp_path, ext):
    vol, aff = phantom().astype(np.int16), _oblique_ras()
    path = tmp_path / f"t1{ext}"
    if ext in (".mgz", ".mgh"):
        nib.save(nib.MGHImage(vol, aff), str(path))
    else:
        img = sitk.GetImageFromArray(vol.transpose(2, 1, 0))
        lps = np.linalg.inv(LPS_TO_RAS) @ aff
        sp = np.sqrt((lps[:3, :3] ** 2).sum(0))
        img.SetSpacing(sp.tolist())
        img.SetDirection((lps[:3, :3] / sp).ravel().tolist())
        img.SetOrigin(lps[:3, 3].tolist())
        sitk.WriteImage(img, str(path))
    ours = read_any(path)
    np.testing.assert_allclose(ours.affine, aff, atol=1e-4)
    np.testing.assert_allclose(ours.data, vol)


@needs_sitk
@pytest.mark.parametrize("ext", [".mgz", ".nrrd", ".mha"])
def test_translate_volume_formats_keep_geometry_and_type(tmp_path, run_dir, ext):
    from mri_cyclegan.cli import main

    vol, aff = phantom(), _oblique_ras()
    src = tmp_path / f"t1{ext}"
    if ext == ".mgz":
        nib.save(nib.MGHImage(vol, aff), str(src))
    else:
        from mri_cyclegan.io.formats import write_itk

        write_itk(src, vol, aff, {"format": "itk", "pixel_id": sitk.sitkInt16, "metadata": {}})
    out = tmp_path / f"fake{ext}"
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", "--quiet", str(src), str(out)]) == 0
    if ext == ".mgz":
        img = nib.load(str(out))
        data, affine, dtype = np.asarray(img.dataobj), img.affine, img.get_data_dtype()
    else:
        img = sitk.ReadImage(str(out))
        data, affine = sitk_geometry(img)
        dtype = sitk.GetArrayViewFromImage(img).dtype
    assert data.shape == vol.shape and np.dtype(dtype).newbyteorder("=") == np.int16  # the input's type (MGH is big-endian)
    np.testing.assert_allclose(affine, aff, atol=1e-4)
    assert np.ptp(np.asarray(data, np.float32)) > 0
    # voxel for voxel the in-memory translation, rounded to the file's int16 (a mirrored or transposed writer fails)
    from mri_cyclegan.inference import Translator

    expected = Translator.from_checkpoint(run_dir / "checkpoints" / "last.safetensors", device="cpu").translate(read_any(src), "t1_to_t2")
    np.testing.assert_allclose(np.asarray(data, np.float32), np.rint(expected), atol=1.0)


@needs_sitk
def test_translate_dicom_series_to_nifti_and_to_dicom(tmp_path, run_dir):
    from mri_cyclegan.cli import main

    dicom_root = tmp_path / "dicom"
    expected = write_series(dicom_root / "exam1", phantom(), "oblique", description="t1 mprage")
    write_series(dicom_root / "exam2", phantom((32, 32, 6), seed=4), "axial", number=7, description="T1 axial")
    out = tmp_path / "out"
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", "--quiet", str(dicom_root), str(out)]) == 0
    img = nib.load(str(out / "exam1" / "3_t1_mprage.nii.gz"))
    np.testing.assert_allclose(img.affine, expected, atol=1e-4)
    assert img.shape == (40, 36, 12)
    assert nib.load(str(out / "exam2" / "7_T1_axial.nii.gz")).shape == (32, 32, 6)

    out_dcm = tmp_path / "out_dcm"
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", "--quiet", "--dicom-out",
                 str(dicom_root / "exam1"), str(out_dcm)]) == 0
    series_dir = out_dcm / "3_t1_mprage_synthetic"
    data, affine = sitk_series(series_dir)  # GDCM reads what we wrote as one series with the source's geometry
    np.testing.assert_allclose(affine, expected, atol=1e-3)
    np.testing.assert_allclose(data, img.get_fdata(), atol=0.5 + 1e-3)  # the NIfTI output's values, rounded to integers
    src = pydicom.dcmread(str(next((dicom_root / "exam1").iterdir())))
    new = [pydicom.dcmread(str(f)) for f in sorted(series_dir.iterdir())]
    assert len(new) == 12 and len({d.SOPInstanceUID for d in new}) == 12
    assert {d.SeriesInstanceUID for d in new} != {src.SeriesInstanceUID} and len({d.SeriesInstanceUID for d in new}) == 1
    assert all(d.StudyInstanceUID == src.StudyInstanceUID and d.PatientID == src.PatientID for d in new)
    assert "SYNTHETIC" in new[0].SeriesDescription and "DERIVED" in new[0].ImageType
    # a second run does not silently replace the series
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", "--quiet", "--dicom-out",
                 str(dicom_root / "exam1"), str(out_dcm)]) == 2


def test_train_on_dicom_and_mgz(tmp_path):
    """T1 as DICOM series, T2 as FreeSurfer .mgz: training reads both with their spacing (fingerprint)."""
    import json

    from conftest import TRAIN_FLAGS

    from mri_cyclegan.cli import main

    for s in range(2):
        write_series(tmp_path / "t1" / f"sub{s}", phantom(seed=s), spacing=(1.2, 1.2))
    (tmp_path / "t2").mkdir()
    for s in range(2):
        aff = np.diag([1.2, 1.2, 2.5, 1.0])
        nib.save(nib.MGHImage((3000 - phantom(seed=10 + s)).astype(np.int16) * (phantom(seed=10 + s) > 0), aff), str(tmp_path / "t2" / f"s{s}.mgz"))
    out = tmp_path / "run"
    assert main(["train", "--t1", str(tmp_path / "t1"), "--t2", str(tmp_path / "t2"), "--out", str(out), "--quiet", *TRAIN_FLAGS]) == 0
    assert json.loads((out / "config.json").read_text())["data"]["spacing"] == pytest.approx(1.2)


@pytest.mark.parametrize("bad", ["negative_spacing", "non_unit_orientation", "slope_zero"])
def test_dicom_headers_that_lie_are_refused(tmp_path, bad):
    """Each of these was accepted before: a mirrored volume, a wrong spacing, every voxel the intercept."""
    folder = tmp_path / "s"
    write_series(folder, phantom(shape=(16, 12, 4)))
    for f in folder.iterdir():
        ds = pydicom.dcmread(str(f))
        if bad == "negative_spacing":
            ds.PixelSpacing = ["-0.9", "0.8"]
        elif bad == "non_unit_orientation":
            ds.ImageOrientationPatient = ["2", "0", "0", "0", "2", "0"]
        else:
            ds.RescaleSlope = "0"
        ds.save_as(str(f))
    with pytest.raises(InputError, match="PixelSpacing|ImageOrientationPatient|RescaleSlope"):
        read_any(next(folder.iterdir()))


def test_enhanced_dicom_with_fewer_frame_items_than_frames_is_refused(tmp_path):
    """8 frames of pixels but per-frame groups for 3: once 3 slices were written and 5 silently dropped."""
    test_enhanced_multiframe_dicom(tmp_path, rescaled=False)  # writes enhanced/mf.dcm (12 frames)
    path = tmp_path / "enhanced" / "mf.dcm"
    ds = pydicom.dcmread(str(path))
    from pydicom.sequence import Sequence

    ds.PerFrameFunctionalGroupsSequence = Sequence(list(ds.PerFrameFunctionalGroupsSequence)[:3])
    ds.save_as(str(path))
    with pytest.raises(InputError, match="NumberOfFrames"):
        read_any(path)


def test_a_folder_with_one_dicom_series_translates_to_the_named_file(tmp_path):
    """Once `translate dicom_folder/ out.nii.gz` made a folder named out.nii.gz; two series there need a folder."""
    from mri_cyclegan.translate_files import plan_outputs

    write_series(tmp_path / "dcm", phantom(shape=(16, 12, 4)))
    plan = plan_outputs(tmp_path / "dcm", tmp_path / "out.nii.gz")
    assert [d for _, d in plan] == [tmp_path / "out.nii.gz"]
    write_series(tmp_path / "dcm", phantom(shape=(16, 12, 4)), number=4, description="T1 again", names="B{:04d}")
    with pytest.raises(InputError, match="name an output folder"):
        plan_outputs(tmp_path / "dcm", tmp_path / "out.nii.gz")


def test_a_deflated_dicom_that_inflates_past_the_limit_is_refused(tmp_path, monkeypatch):
    """Deflated DICOM is inflated whole by pydicom: its inflated size is measured first, in bounded steps."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    import mri_cyclegan.io.dicom as dicom

    folder = tmp_path / "s"
    write_series(folder, phantom(shape=(64, 64, 3)))
    for f in folder.iterdir():
        ds = pydicom.dcmread(str(f))
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
        ds.save_as(str(f), enforce_file_format=True)
    assert read_any(next(folder.iterdir())).shape == (64, 64, 3)  # a normal deflated series reads
    monkeypatch.setattr(dicom, "MAX_INFLATED", 4096)  # each slice inflates to ~8 KB
    with pytest.raises(InputError, match="inflates past"):
        dicom._read_header(next(folder.iterdir()))


def test_dicom_rescale_slope_is_read_per_slice(tmp_path):
    """Each slice has its own RescaleSlope (scanners do this): the values come back as stored x that slice's slope."""
    true = phantom().astype(np.float64)
    slopes = [0.5 + 0.25 * (k % 4) for k in range(true.shape[2])]
    stored = np.stack([np.rint(true[:, :, k] / s) for k, s in enumerate(slopes)], 2).astype(np.int16)
    write_series(tmp_path / "s", stored, "axial", slope=slopes)
    [entry] = list_inputs(tmp_path / "s")
    vol = read_any(entry)
    np.testing.assert_allclose(vol.data, stored * np.array(slopes)[None, None, :], atol=1e-3)
    assert np.abs(vol.data - true).max() <= max(slopes) / 2 + 1e-6


def _dciodvfy(path: Path) -> list[str]:
    """The errors dicom3tools' DICOM validator (dciodvfy) reports for one file (skipped where it is not installed:
    Debian/Ubuntu package dicom3tools)."""
    import shutil
    import subprocess

    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.skip("dciodvfy is not installed (apt-get install dicom3tools)")
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("scale, offset, slope", [(1.7, 3.3, False), (1.0, -900.0, False), (0.001, 0.0, True)])
def test_dicom_out_is_valid_and_stores_values_without_a_slope_when_they_fit(tmp_path, scale, offset, slope):
    """A sparse source series (no FrameOfReferenceUID, ScanningSequence, dates, ...) gives a synthetic series with 0
    dciodvfy errors; translations that fit 16-bit integers are stored as such (no RescaleSlope in an MR image, which
    viewers may ignore), unsigned when non-negative; only values spanning too few units to round keep a slope."""
    import pydicom

    from mri_cyclegan.io.dicom import read_dicom_series, write_dicom_series
    from mri_cyclegan.io.volume import Volume

    write_series(tmp_path / "src", phantom(), "oblique")
    src = read_dicom_series(sorted((tmp_path / "src").iterdir())[0])
    values = src.data * scale + offset
    out = write_dicom_series(tmp_path / "out", Volume(values, src.affine, src.header), "SYNTHETIC T2w")
    files = sorted(out.iterdir())
    assert _dciodvfy(files[0]) == [] and _dciodvfy(files[-1]) == []
    ds = [pydicom.dcmread(f) for f in files]
    assert ("RescaleSlope" in ds[0]) is slope
    assert ds[0].PixelRepresentation == (0 if values.min() >= 0 and not slope else 1)
    assert len({d.FrameOfReferenceUID for d in ds}) == 1 and ds[0].ScanningSequence == "RM"
    back = read_dicom_series(files[0])
    np.testing.assert_allclose(back.affine, src.affine, atol=1e-4)
    tol = np.ptp(values) / 32767 if slope else 0.5 + 1e-4
    np.testing.assert_allclose(back.data, values, atol=tol)
