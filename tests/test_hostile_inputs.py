"""Bad or hostile inputs end in one line and exit 2, before anything is written: planned outputs that collide,
BIDS sidecars, lying affines, multi-page images, poisoned checkpoints and ONNX files, deep configs."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from mri_cyclegan.cli import main
from mri_cyclegan.errors import InputError

from tests.conftest import TRAIN_FLAGS, make_image_folders


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_train_with_a_missing_input_leaves_no_run_folder(tmp_path, capsys):
    t1, _ = make_image_folders(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["train", "--t1", str(t1), "--t2", str(tmp_path / "nope"), "--out", str(out), *TRAIN_FLAGS]) == 2
    assert not out.exists()  # no train.log: the corrected re-run is not refused as "already holds a run"
    assert "nope" in _one_line(capsys)


def test_evaluate_out_naming_a_file_is_refused_before_scoring(tmp_path, capsys):
    f = tmp_path / "report.txt"
    f.write_text("mine")
    assert main(["evaluate", "--pred", str(tmp_path / "p"), "--ref", str(tmp_path / "r"), "--out", str(f)]) == 2
    assert "is a file" in _one_line(capsys) and f.read_text() == "mine"


def test_a_deeply_nested_config_is_one_line(tmp_path):
    from mri_cyclegan.config import load_config

    p = tmp_path / "deep.yaml"
    p.write_text("[" * 5000 + "]" * 5000)  # far past the parser's recursion limit
    with pytest.raises(InputError, match="nested too deeply"):
        load_config(p)


@pytest.mark.parametrize("bad", ["nan", "zero_spacing", "parallel"])
def test_lying_nifti_affines_are_refused(tmp_path, bad):
    from mri_cyclegan.io.formats import read_affine, read_volume

    aff = np.eye(4)
    if bad == "nan":
        aff[0, 0] = np.nan
    elif bad == "zero_spacing":
        aff[1, 1] = 0.0
    else:
        aff[:3, 1] = aff[:3, 0]
    path = tmp_path / "x.nii.gz"
    img = nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8)).astype(np.float32), None)
    img.header.set_sform(aff, code=1)
    img.header.set_qform(None, code=0)
    nib.save(img, path)
    with pytest.raises(InputError, match="NaN|voxel size|parallel"):
        read_volume(path)
    with pytest.raises(InputError):
        read_affine(path)


def test_a_multi_page_tiff_is_refused_not_cut_to_page_one(tmp_path):
    from mri_cyclegan.io.images import read_image

    pages = [Image.fromarray(np.full((16, 16), i * 20, np.uint8)) for i in range(8)]
    path = tmp_path / "stack.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    with pytest.raises(InputError, match="8 pages"):
        read_image(path)


def test_two_inputs_one_output_and_foreign_data_files_are_refused_in_the_plan(tmp_path):
    from mri_cyclegan.translate_files import plan_outputs

    sitk = pytest.importorskip("SimpleITK")
    src = tmp_path / "in"
    src.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 5, 6), np.int16)), str(src / "scan.mhd"))
    with pytest.raises(InputError, match="data file"):  # scan.nhdr would write the input's own scan.raw
        plan_outputs(src / "scan.mhd", src / "scan.nhdr")
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.raw").write_bytes(b"mine")
    with pytest.raises(InputError, match="not that header's own"):
        plan_outputs(src / "scan.mhd", out / "result.mhd", overwrite=True)
    # a.mhd and a.nhdr in one folder would both write out2/a.raw
    pair = tmp_path / "pair"
    pair.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 5, 6), np.int16)), str(pair / "a.mhd"))
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 5, 6), np.int16)), str(pair / "x.nhdr"))
    (pair / "x.nhdr").rename(pair / "a.nhdr")
    with pytest.raises(InputError, match="would both be written"):
        plan_outputs(pair, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_bids_duplicate_sources_and_existing_sidecars(tmp_path):
    from mri_cyclegan.translate_files import plan_bids

    from tests.io.test_bids import make_bids

    root = make_bids(tmp_path / "ds")
    src = root / "sub-01/anat/sub-01_T1w.nii.gz"
    nib.save(nib.load(src), root / "sub-01/anat/sub-01_T1w.nii")  # the same image twice, .nii beside .nii.gz
    with pytest.raises(InputError, match="would both be written"):
        plan_bids(root, None, "t1_to_t2", ["01"], overwrite=False)
    (root / "sub-01/anat/sub-01_T1w.nii").unlink()
    sidecar = root / "derivatives/mri-cyclegan/sub-01/anat/sub-01_desc-synthetic_T2w.json"
    sidecar.parent.mkdir(parents=True)
    sidecar.write_text('{"mine": true}')
    with pytest.raises(InputError, match="already exist"):
        plan_bids(root, None, "t1_to_t2", ["01"], overwrite=False)
    assert plan_bids(root, None, "t1_to_t2", ["01"], overwrite=True)


def test_poisoned_checkpoint_and_onnx_files_are_one_line(tmp_path, run_dir):
    import torch

    from mri_cyclegan.inference import Translator
    from mri_cyclegan.checkpoints import load_checkpoint, save_checkpoint

    tensors, meta, _ = load_checkpoint(run_dir)
    key = next(k for k in tensors if k.endswith("prior.lut"))
    bad = dict(tensors)
    bad[key] = torch.full_like(tensors[key], float("nan"))
    save_checkpoint(tmp_path / "nan.safetensors", bad, meta)
    with pytest.raises(InputError, match="NaN"):
        Translator.from_checkpoint(tmp_path / "nan.safetensors", device="cpu")
    tr = Translator.from_checkpoint(run_dir, device="cpu")
    pytest.importorskip("onnxruntime")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    for path in (junk, tmp_path / "missing.onnx"):
        with pytest.raises(InputError, match="--onnx"):
            tr.use_onnx("t1-to-t2", path)


def test_onnx_telemetry_is_off(tmp_path, run_dir, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    from mri_cyclegan.inference import Translator

    calls = []
    monkeypatch.setattr(ort, "disable_telemetry_events", lambda: calls.append(1))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"x")
    with pytest.raises(InputError):
        Translator.from_checkpoint(run_dir, device="cpu").use_onnx("t1-to-t2", junk)
    assert calls == [1]


def test_evaluate_embeds_only_the_checkpoints_own_run(tmp_path, run_dir):
    from mri_cyclegan.evaluate import _run_dir

    assert _run_dir(run_dir) == run_dir
    assert _run_dir(run_dir / "checkpoints" / "last.safetensors") == run_dir
    stray = tmp_path / "a" / "b" / "model.safetensors"  # two folders below a folder with a losses.png
    stray.parent.mkdir(parents=True)
    (tmp_path / "losses.png").write_bytes(b"secret")
    stray.write_bytes((run_dir / "checkpoints" / "last.safetensors").read_bytes())
    assert _run_dir(stray) is None
    assert Path(run_dir).is_dir()


def test_spacings_cannot_blow_up_or_collapse_the_model_grid():
    from mri_cyclegan.config import Config, DataConfig
    from mri_cyclegan.data.preprocess import Preprocessor
    from mri_cyclegan.io import Volume

    with pytest.raises(InputError, match="spacing"):
        Config().replace(**{"data.spacing": 0.001})  # a checkpoint asking for a 0.001 mm grid
    pre = Preprocessor(DataConfig(), target_spacing=1.0)
    data = np.random.default_rng(0).random((64, 64, 4)).astype(np.float32)
    with pytest.raises(InputError, match="model space"):
        pre.forward(Volume(data, np.diag([90.0, 90.0, 1.0, 1.0])))  # 64 x 90 mm -> 5760 pixels a side
    with pytest.raises(InputError, match="model space"):
        pre.forward(Volume(data, np.diag([0.05, 0.05, 1.0, 1.0])))  # 64 x 0.05 mm -> 3 pixels a side
    assert pre.forward(Volume(data, np.diag([1.5, 1.5, 1.0, 1.0])))[0].shape == (4, 96, 96)
