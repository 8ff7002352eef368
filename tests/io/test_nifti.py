import gzip

import nibabel as nib
import numpy as np
import pytest

from mri_cyclegan.errors import InputError
from mri_cyclegan.io import read_nifti, write_nifti
from mri_cyclegan.io.geometry import from_canonical, slices, stack, to_canonical
from tests.conftest import oblique_affine


def test_round_trip_keeps_affine_header_dtype(nifti_pair, tmp_path):
    vol = read_nifti(nifti_pair[0])
    out = tmp_path / "out.nii.gz"
    write_nifti(out, vol.data, vol.affine, vol.header)
    back = nib.load(out)
    np.testing.assert_allclose(back.affine, vol.affine)
    assert back.get_data_dtype() == np.int16
    assert back.header["descrip"].tobytes().startswith(b"phantom t1")
    np.testing.assert_array_equal(back.get_fdata(), vol.data)
    assert nib.aff2axcodes(back.affine) == nib.aff2axcodes(oblique_affine())


@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])
def test_canonical_and_slices_invert(axis):
    data = np.random.default_rng(0).random((5, 7, 9)).astype(np.float32)
    aff = oblique_affine()
    can = to_canonical(data, aff)
    assert nib.aff2axcodes(nib.as_closest_canonical(nib.Nifti1Image(data, aff)).affine) == ("R", "A", "S")
    np.testing.assert_array_equal(can, nib.as_closest_canonical(nib.Nifti1Image(data, aff)).get_fdata(dtype=np.float32))
    np.testing.assert_array_equal(from_canonical(stack(slices(can, axis), axis), aff), data)


@pytest.mark.parametrize(
    "data, match",
    [
        (np.zeros((4, 4, 4, 2), np.float32) + np.arange(2), "3D"),
        (np.full((4, 4, 4), np.nan, np.float32), "NaN"),
        (np.full((4, 4, 4), 5.0, np.float32), "constant"),
        (np.zeros((4, 0, 4), np.float32), "empty"),
    ],
)
def test_bad_volumes(tmp_path, data, match):
    p = tmp_path / "bad.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), p)
    with pytest.raises(InputError, match=match):
        read_nifti(p)


def test_truncated_gzip(tmp_path):
    p = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((20, 20, 20)).astype(np.float32), np.eye(4)), p)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="v.nii.gz"):
        read_nifti(p)
    (tmp_path / "x.nii.gz").write_bytes(gzip.compress(b"garbage" * 10))
    with pytest.raises(InputError):
        read_nifti(tmp_path / "x.nii.gz")


def test_qform_and_sform_codes_and_matrices_survive(tmp_path):
    data = np.random.default_rng(0).random((6, 7, 5)).astype(np.float32) + 1
    q = oblique_affine()
    s = q.copy()
    s[:3, 3] += [1.0, -2.0, 3.0]  # a different (e.g. template-registered) sform
    img = nib.Nifti1Image(data, None)
    img.set_qform(q, code=1)  # scanner
    img.set_sform(s, code=4)  # MNI
    nib.save(img, tmp_path / "in.nii.gz")
    vol = read_nifti(tmp_path / "in.nii.gz")
    write_nifti(tmp_path / "out.nii.gz", vol.data * 2, vol.affine, vol.header)
    back = nib.load(tmp_path / "out.nii.gz")
    qm, qc = back.header.get_qform(coded=True)
    sm, sc = back.header.get_sform(coded=True)
    assert (int(qc), int(sc)) == (1, 4)
    np.testing.assert_allclose(qm, q, atol=1e-5)
    np.testing.assert_allclose(sm, s, atol=1e-5)
    np.testing.assert_allclose(back.get_fdata(), data * 2, rtol=1e-6)
