"""Headers that lie: detached data files stay beside their header, sizes are checked before allocation, and a writer
never replaces a data file that is not its own."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest

from mri_cyclegan.errors import InputError
from mri_cyclegan.io import Volume
from mri_cyclegan.io.formats import read_volume, write_volume

sitk = pytest.importorskip("SimpleITK")


def _mhd(folder, name: str = "scan", data_file: str | None = None, dims=(4, 5, 6)):
    """A valid detached MetaImage (name.mhd + name.raw); ``data_file`` rewrites its ElementDataFile line."""
    folder.mkdir(parents=True, exist_ok=True)
    arr = np.arange(np.prod(dims), dtype=np.int16).reshape(dims[::-1])
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(folder / f"{name}.mhd"))
    header = folder / f"{name}.mhd"
    if data_file is not None:
        lines = [f"ElementDataFile = {data_file}" if ln.startswith("ElementDataFile") else ln for ln in header.read_text().splitlines()]
        header.write_text("\n".join(lines) + "\n")
    return header


def test_a_valid_detached_header_reads(tmp_path):
    v = read_volume(_mhd(tmp_path / "in"))
    assert v.shape == (4, 5, 6) and v.data.max() == 119


@pytest.mark.parametrize("where", ["absolute", "parent", "symlink"])
def test_a_data_file_outside_the_header_folder_is_not_read(tmp_path, where):
    secret = tmp_path / "secret.raw"
    secret.write_bytes(b"\x07" * 240)  # a file next to the input's folder, the size the header asks for
    value = {"absolute": str(secret), "parent": "../secret.raw", "symlink": "link.raw"}[where]
    header = _mhd(tmp_path / "in", data_file=value)
    if where == "symlink":
        os.symlink(secret, tmp_path / "in" / "link.raw")
    with pytest.raises(InputError, match="outside the header's folder"):
        read_volume(header)


def test_a_fifo_truncated_or_missing_data_file_is_one_line(tmp_path):
    header = _mhd(tmp_path / "in", data_file="pipe.raw")
    os.mkfifo(tmp_path / "in" / "pipe.raw")  # reading it would block forever
    with pytest.raises(InputError, match="not a regular file"):
        read_volume(header)
    header = _mhd(tmp_path / "t")
    raw = tmp_path / "t" / "scan.raw"
    raw.write_bytes(raw.read_bytes()[:100])
    with pytest.raises(InputError, match="truncated"):
        read_volume(header)
    header = _mhd(tmp_path / "m", data_file="gone.raw")
    with pytest.raises(InputError, match="missing"):
        read_volume(header)


def test_header_sizes_are_checked_before_allocation(tmp_path):
    h = nib.Nifti1Header()
    h.set_data_shape((4000, 4000, 4000))
    h.set_data_dtype(np.int16)
    path = tmp_path / "bomb.nii"
    with open(path, "wb") as f:  # 348-byte header + 4 bytes: claims 119 GiB
        f.write(h.binaryblock + b"\x00" * 4)
    with pytest.raises(InputError, match="voxel limit"):
        read_volume(path)
    header = _mhd(tmp_path / "big", dims=(4, 5, 6))
    header.write_text(header.read_text().replace("DimSize = 4 5 6", "DimSize = 3000 3000 3000"))
    with pytest.raises(InputError, match="voxel limit"):
        read_volume(header)


def test_complex_nifti_is_refused_not_truncated(tmp_path):
    path = tmp_path / "c.nii.gz"
    nib.save(nib.Nifti1Image((np.ones((4, 4, 4)) + 1j).astype(np.complex64), np.eye(4)), path)
    with pytest.raises(InputError, match="complex"):
        read_volume(path)


def test_a_writer_never_replaces_another_volumes_data_file(tmp_path):
    header = _mhd(tmp_path / "in")
    raw = tmp_path / "in" / "scan.raw"
    before = raw.read_bytes()
    vol = read_volume(header)
    # scan.nhdr beside scan.mhd would write scan.raw: the input's own data
    with pytest.raises(InputError, match="already exists"):
        write_volume(tmp_path / "in" / "scan.nhdr", Volume(vol.data * 0 + 1, vol.affine))
    assert raw.read_bytes() == before and not (tmp_path / "in" / "scan.nhdr").exists()
    # an unrelated result.raw in the output folder
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.raw").write_bytes(b"mine")
    with pytest.raises(InputError, match="already exists"):
        write_volume(out / "result.mhd", vol)
    assert (out / "result.raw").read_bytes() == b"mine"
    # a header replaced together with its own data file is fine (that is what --overwrite asks for)
    write_volume(tmp_path / "o2" / "r.mhd", vol)
    write_volume(tmp_path / "o2" / "r.mhd", Volume(vol.data + 1, vol.affine))
    assert read_volume(tmp_path / "o2" / "r.mhd").data.max() == 120
