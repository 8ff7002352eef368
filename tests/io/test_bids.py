"""BIDS: training reads *_T1w / *_T2w of every subject and session; translate writes a BIDS-derivatives dataset."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mri_cyclegan.errors import InputError
from mri_cyclegan.io.bids import derivative_name, find_bids


def make_bids(root: Path) -> Path:
    """sub-01 (no sessions, T1w + T2w), sub-02 (two sessions, T1w only in ses-2), a derivatives folder to ignore."""
    from phantoms import volume_pair

    (root).mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "toy", "BIDSVersion": "1.9.0"}))
    aff = np.diag([1.1, 1.1, 2.0, 1.0])
    layout = {"sub-01/anat/sub-01": ("T1w", "T2w"), "sub-02/ses-1/anat/sub-02_ses-1": ("T1w", "T2w"), "sub-02/ses-2/anat/sub-02_ses-2_run-1": ("T1w",)}
    for i, (prefix, suffixes) in enumerate(layout.items()):
        t1, t2 = volume_pair((24, 28, 6), seed=i)
        (root / prefix).parent.mkdir(parents=True, exist_ok=True)
        for s in suffixes:
            nib.save(nib.Nifti1Image((t1 if s == "T1w" else t2).astype(np.float32), aff), str(root / f"{prefix}_{s}.nii.gz"))
            (root / f"{prefix}_{s}.json").write_text("{}")
    deriv = root / "derivatives" / "other" / "sub-01" / "anat"
    deriv.mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), aff), str(deriv / "sub-01_desc-brain_T1w.nii.gz"))
    return root


def test_find_bids_subjects_sessions_and_filter(tmp_path):
    root = make_bids(tmp_path / "ds")
    t1 = find_bids(root, "T1w")
    assert [f.name for f in t1] == ["sub-01_T1w.nii.gz", "sub-02_ses-1_T1w.nii.gz", "sub-02_ses-2_run-1_T1w.nii.gz"]
    assert [f.name for f in find_bids(root, "T2w", ["sub-02"])] == ["sub-02_ses-1_T2w.nii.gz"]
    with pytest.raises(InputError, match="03"):
        find_bids(root, "T1w", ["01", "03"])
    assert derivative_name(Path("sub-02_ses-2_run-1_desc-raw_T1w.nii.gz"), "T2w") == "sub-02_ses-2_run-1_desc-synthetic_T2w.nii.gz"


def test_train_and_translate_bids(tmp_path):
    from conftest import TRAIN_FLAGS

    from mri_cyclegan.cli import main

    root = make_bids(tmp_path / "ds")
    run = tmp_path / "run"
    assert main(["train", "--t1", str(root), "--t2", str(root), "--out", str(run), "--quiet", "--subjects", "01,02",
                 "--paired-t1", str(root), "--paired-t2", str(root), *TRAIN_FLAGS]) == 0
    log = (run / "train.log").read_text()
    assert "3 *_T1w images" in log and "2 *_T2w images" in log
    assert "from 2 co-registered T1/T2 pairs" in log  # a BIDS root as pairs: sub-01 and sub-02 ses-1 (ses-2 has no T2w)
    assert main(["translate", "--model", str(run), "--direction", "t1-to-t2", "--quiet", "--subjects", "02", str(root)]) == 0
    out = root / "derivatives" / "mri-cyclegan"
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.nii.gz"))
    assert made == ["sub-02/ses-1/anat/sub-02_ses-1_desc-synthetic_T2w.nii.gz", "sub-02/ses-2/anat/sub-02_ses-2_run-1_desc-synthetic_T2w.nii.gz"]
    src = nib.load(str(root / "sub-02/ses-2/anat/sub-02_ses-2_run-1_T1w.nii.gz"))
    img = nib.load(str(out / made[1]))
    np.testing.assert_allclose(img.affine, src.affine)
    assert img.shape == src.shape
    side = json.loads((out / made[1].replace(".nii.gz", ".json")).read_text())
    assert side["Sources"] == ["bids:raw:sub-02/ses-2/anat/sub-02_ses-2_run-1_T1w.nii.gz"] and "not for diagnosis" in side["Description"]
    assert side["SkullStripped"] is False  # required by the BIDS validator for anatomical derivatives
    assert json.loads((out / "dataset_description.json").read_text())["DatasetType"] == "derivative"
    # the derivatives are never read back as inputs, and --subjects outside BIDS is refused
    assert main(["translate", "--model", str(run), "--direction", "t1-to-t2", "--quiet", str(root)]) == 2  # sub-02's exist
    assert main(["translate", "--model", str(run), "--direction", "t1-to-t2", "--quiet", "--overwrite", str(root)]) == 0
    assert len(list(out.rglob("*.nii.gz"))) == 3
    assert main(["train", "--t1", str(root / "sub-01"), "--t2", str(root), "--out", str(tmp_path / "r2"), "--subjects", "01", "--quiet",
                 *TRAIN_FLAGS]) == 2


def test_sidecar_keeps_the_source_skull_stripping(tmp_path):
    from mri_cyclegan.io.bids import write_sidecar

    src = tmp_path / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"")
    (src.parent / "sub-01_T1w.json").write_text(json.dumps({"SkullStripped": True}))
    dst = tmp_path / "sub-01_desc-synthetic_T2w.nii.gz"
    assert json.loads(write_sidecar(dst, tmp_path, src, "m", "t1_to_t2", "0").read_text())["SkullStripped"] is True
    (src.parent / "sub-01_T1w.json").write_text("not json")
    assert json.loads(write_sidecar(dst, tmp_path, src, "m", "t1_to_t2", "0").read_text())["SkullStripped"] is False


def _bids_validator(root: Path) -> list[tuple[str, str, str]]:
    """(code, severity, location) of every issue the official BIDS validator (PyPI bids-validator-deno, offline)
    finds in ``root``."""
    import shutil
    import subprocess

    exe = shutil.which("bids-validator-deno")
    if exe is None:
        pytest.skip("bids-validator-deno is not installed (pip install -e '.[dev]')")
    out = subprocess.run([exe, "--format", "json", str(root)], capture_output=True, text=True, timeout=120)
    report = json.loads(out.stdout)
    return [(i["code"], i["severity"], i.get("location", "")) for i in report["issues"]["issues"]]


def test_bids_derivatives_with_uncertainty_pass_the_bids_validator(run_dir, tmp_path, capsys):
    from mri_cyclegan.cli import main

    root = make_bids(tmp_path / "ds")
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", "--quiet", "--uncertainty", str(root)]) == 0
    out = root / "derivatives" / "mri-cyclegan"
    assert f"wrote 3 files to {out} in" in capsys.readouterr().out  # the derivatives folder, not the absent OUTPUT ('None')
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("sub-01_*"))
    assert made == ["sub-01/anat/sub-01_desc-syntheticUncertainty_T2w.json", "sub-01/anat/sub-01_desc-syntheticUncertainty_T2w.nii.gz",
                    "sub-01/anat/sub-01_desc-synthetic_T2w.json", "sub-01/anat/sub-01_desc-synthetic_T2w.nii.gz"]
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["SourceDatasets"] == [{"URL": "bids:raw:"}] and desc["DatasetLinks"] == {"raw": "../.."}  # no local file:// path
    assert "bids::sub-01/anat/sub-01_desc-synthetic_T2w.nii.gz" in json.loads(
        (out / "sub-01/anat/sub-01_desc-syntheticUncertainty_T2w.json").read_text())["Sources"]
    assert nib.load(out / made[3]).header.get_xyzt_units()[0] == "mm"  # the source said nothing: NIfTI's own default, stated
    issues = _bids_validator(out)
    # Authors are the user's to name; everything else the validator checks must be clean
    assert [i for i in issues if i[0] != "TOO_FEW_AUTHORS"] == [], issues
