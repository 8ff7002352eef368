import pytest

from mri_cyclegan.io.atomic import atomic_path


def test_replaces_on_success_and_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "sub" / "vol.nii.gz"
    with atomic_path(target) as tmp:
        assert tmp.name.endswith(".nii.gz") and tmp.parent == target.parent
        tmp.write_text("new")
    assert target.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["vol.nii.gz"]
