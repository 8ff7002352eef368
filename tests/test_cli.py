"""The CLI as a user runs it: exit codes, files written, one-line errors."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from mri_cyclegan.cli import main

from tests.conftest import TRAIN_FLAGS


def test_help_is_instant_and_documents_flags():
    code = "import sys; from mri_cyclegan import cli\ntry: cli.main(['train', '--help'])\nexcept SystemExit: pass\nassert 'torch' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for flag in ("--t1", "--image-size", "--gan-loss", "--lambda-identity", "--resume", "--seed", "--device", "--generator"):
        assert flag in r.stdout


def test_train_smoke_writes_run_folder(run_dir):
    for name in ("config.json", "losses.csv", "losses.png", "progress.gif", "train.log", "checkpoints/last.safetensors"):
        assert (run_dir / name).is_file(), name
    cfg = json.loads((run_dir / "config.json").read_text())["data"]
    assert cfg["patch_size"] == 32 and cfg["image_size"] == 0 and cfg["spacing"] == 0  # PNGs: native pixel grid
    rows = (run_dir / "losses.csv").read_text().splitlines()
    assert len(rows) == 3 and [r.split(",")[0] for r in rows[1:]] == ["1", "2"]  # header + 2 iterations
    assert all(np.isfinite(float(v)) for r in rows[1:] for v in r.split(","))
    from mri_cyclegan.config import Config
    from mri_cyclegan.checkpoints import load_checkpoint

    _, meta, config = load_checkpoint(run_dir)
    assert meta["step"] == 2 and meta["epoch"] == 1 and config == Config.from_dict(json.loads((run_dir / "config.json").read_text()))
    grid = Image.open(run_dir / "samples" / "epoch_001.png")
    assert grid.width > 6 * 40 and np.array(grid).std() > 10  # six labelled native-size columns, not blank
    assert "epoch 1/1" in (run_dir / "train.log").read_text()


def test_resume_extends_training(image_folders, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(run), "--quiet"]
    assert main([*base, *TRAIN_FLAGS]) == 0
    flags = [f if prev != "--epochs" else "2" for prev, f in zip([""] + TRAIN_FLAGS, TRAIN_FLAGS)]  # 2 epochs in total
    assert main([*base, "--resume", *flags, "--lambda-nce", "1"]) == 2  # PatchNCE's heads cannot be added on resume: one line
    assert "was trained without PatchNCE; resume it with --lambda-nce 0" in _err(capsys)
    assert main([*base, "--resume", *flags]) == 0
    assert len((run / "losses.csv").read_text().splitlines()) == 5


def test_translate_png_folder_keeps_size_and_depth(run_dir, image_folders, tmp_path):
    out = tmp_path / "fake_t2"
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", str(image_folders[0]), str(out), "--quiet"]) == 0
    from mri_cyclegan.inference import Translator

    translator = Translator.from_checkpoint(run_dir, device="cpu")
    for src in image_folders[0].glob("*.png"):
        a, b = Image.open(src), Image.open(out / src.name)
        assert a.size == b.size and a.mode == b.mode
        x, y = np.array(a, np.float32), np.array(b, np.float32)
        want = np.clip(np.rint(translator.translate_image(x, "t1_to_t2")), 0, 255)
        assert np.abs(y - want).max() <= 1  # the file holds the model's translation ...
        # ... which inverts the T1 contrast (not an identity). Inside the outline: these hard-edged phantoms' one-pixel
        # dark CSF rim has no partial volume, which the prior's outline unmixing reads as tissue mixed with background.
        tissue = ndimage.binary_erosion(x > 0.1 * x.max())
        assert np.corrcoef(x[tissue], y[tissue])[0, 1] < -0.5
    out16 = tmp_path / "fake_t1.png"
    src16 = next(image_folders[1].glob("*.png"))
    assert main(["translate", "--model", str(run_dir / "checkpoints" / "last.safetensors"), "--direction", "t2-to-t1", str(src16), str(out16), "--quiet"]) == 0
    assert np.array(Image.open(out16)).dtype == np.array(Image.open(src16)).dtype
    assert Image.open(out16).size == Image.open(src16).size


def test_translate_nifti_keeps_shape_affine_header(run_dir, nifti_pair, tmp_path):
    out = tmp_path / "fake_t2.nii.gz"
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", str(nifti_pair[0]), str(out), "--quiet"]) == 0
    a, b = nib.load(nifti_pair[0]), nib.load(out)
    assert a.shape == b.shape and b.get_data_dtype() == a.get_data_dtype()
    np.testing.assert_allclose(a.affine, b.affine)
    assert b.header["descrip"].tobytes().startswith(b"phantom t1")
    assert np.isfinite(b.get_fdata()).all() and b.get_fdata().std() > 0


def test_train_on_nifti_volumes(nifti_pair, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--t1", str(nifti_pair[0]), "--t2", str(nifti_pair[1]), "--out", str(out), "--quiet", "--axis", "axial", *TRAIN_FLAGS]) == 0
    assert (out / "checkpoints" / "last.safetensors").is_file()
    cfg = json.loads((out / "config.json").read_text())["data"]
    assert cfg["spacing"] == 1.1  # the fingerprint: median in-plane spacing of the 1.0 x 1.2 mm axial slices, recorded
    assert "target in-plane spacing 1.1 mm" in (out / "train.log").read_text()


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "4d", "constant", "bad_size", "unet_size"])
def test_bad_training_input_exit_2(case, image_folders, tmp_path, capsys):
    t1, t2 = str(image_folders[0]), str(image_folders[1])
    flags = list(TRAIN_FLAGS)
    if case == "missing":
        t1 = str(tmp_path / "nope")
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        t1 = str(tmp_path / "empty")
    elif case == "corrupt":
        (image_folders[0] / "zz.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    elif case == "4d":
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((8, 8, 8, 3)).astype(np.float32), np.eye(4)), tmp_path / "v.nii.gz")
        t1 = str(tmp_path / "v.nii.gz")
    elif case == "constant":
        nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), tmp_path / "c.nii")
        t2 = str(tmp_path / "c.nii")
    elif case == "bad_size":
        flags[1] = "30"
    elif case == "unet_size":
        flags += ["--generator", "unet", "--unet-downs", "6"]
    out = tmp_path / "run"
    assert main(["train", "--t1", t1, "--t2", t2, "--out", str(out), "--quiet", *flags]) == 2
    msg = _err(capsys)
    assert msg.startswith("mri-cyclegan train: error:") and "Traceback" not in capsys.readouterr().err
    assert not (out / "checkpoints").exists()
    if case in ("missing", "corrupt", "4d", "constant"):
        assert any(name in msg for name in ("nope", "zz.png", "v.nii.gz", "c.nii"))


def test_resume_without_checkpoint_exit_2(image_folders, tmp_path, capsys):
    args = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(tmp_path / "r"), "--resume", "--quiet", *TRAIN_FLAGS]
    assert main(args) == 2
    assert "--resume" in _err(capsys)


@pytest.mark.parametrize("case", ["missing", "truncated", "foreign", "other_arch"])
def test_bad_checkpoint_exit_2(case, run_dir, image_folders, tmp_path, capsys):
    ckpt = run_dir / "checkpoints" / "last.safetensors"
    if case == "missing":
        model = tmp_path / "none.safetensors"
    elif case == "truncated":
        model = tmp_path / "t.safetensors"
        model.write_bytes(ckpt.read_bytes()[:1000])
    elif case == "foreign":
        from safetensors.torch import save_file
        import torch

        model = tmp_path / "f.safetensors"
        save_file({"w": torch.zeros(2)}, model)
    else:
        import torch
        from safetensors import safe_open
        from safetensors.torch import save_file

        with safe_open(str(ckpt), "pt") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        cfg = json.loads(meta["config"])
        cfg["model"]["ngf"] = 8  # claims another width than its weights have
        meta["config"] = json.dumps(cfg)
        model = tmp_path / "o.safetensors"
        save_file(tensors, model, metadata=meta)
    out = tmp_path / "o.png"
    assert main(["translate", "--model", str(model), "--direction", "t1-to-t2", str(image_folders[0]), str(out), "--quiet"]) == 2
    msg = _err(capsys)
    assert model.name in msg and msg.startswith("mri-cyclegan translate: error:")
    assert not out.exists()


def test_translate_image_to_non_image_name_exit_2(run_dir, image_folders, tmp_path, capsys):
    src = next(image_folders[0].glob("*.png"))
    out = tmp_path / "fake.nii.gz"
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", str(src), str(out), "--quiet"]) == 2
    assert "fake.nii.gz" in _err(capsys)
    assert list(tmp_path.glob("*fake*")) == [] and list(tmp_path.glob(".tmp-*")) == []


def test_translate_folder_of_volumes_overlaps_io_and_keeps_each_result(run_dir, tmp_path, capsys):
    """Reads and writes run in worker threads while the model works: every output must still be its own input's
    translation, in its own file."""
    from mri_cyclegan.inference import Translator
    from mri_cyclegan.io import read_nifti

    from tests.phantoms import volume_pair

    src = tmp_path / "vols"
    src.mkdir()
    for i, shape in enumerate([(30, 26, 5), (24, 28, 4), (26, 26, 6), (28, 22, 3)]):
        a, _ = volume_pair(shape, seed=10 + i)
        nib.save(nib.Nifti1Image(a.astype(np.float32), np.diag([1.0, 1.0, 2.0, 1.0])), src / f"v{i}.nii.gz")
    out = tmp_path / "out"
    assert main(["translate", "--model", str(run_dir), "--direction", "t1-to-t2", str(src), str(out), "--quiet"]) == 0
    assert "per minute" in capsys.readouterr().out
    translator = Translator.from_checkpoint(run_dir, device="cpu")
    for f in sorted(src.iterdir()):
        want = translator.translate(read_nifti(f), "t1_to_t2")
        np.testing.assert_allclose(nib.load(out / f.name).get_fdata(), want, rtol=1e-5, atol=1e-3)


def test_train_with_pairs_from_the_cli(image_folders, tmp_path, capsys):
    """--paired-t1/--paired-t2: co-registered pairs join every batch (losses.csv's loss_paired); half a pair of flags,
    or folders whose names do not pair up, are refused in one line before the run folder exists."""
    from tests.data.test_pairs import make_paired_folders

    p1, p2 = make_paired_folders(tmp_path / "pairs")
    base = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--quiet", *TRAIN_FLAGS]
    assert main([*base, "--out", str(tmp_path / "half"), "--paired-t1", str(p1)]) == 2
    assert "--paired-t2" in _err(capsys) and not (tmp_path / "half").exists()
    assert main([*base, "--out", str(tmp_path / "nomatch"), "--paired-t1", str(p1), "--paired-t2", str(image_folders[1])]) == 2
    assert "no --paired-t1 file matches" in _err(capsys) and not (tmp_path / "nomatch").exists()
    q1, q2 = make_paired_folders(tmp_path / "off_grid")
    Image.fromarray(np.full((40, 40), 9, np.uint16)).save(q2 / "sub1_T2w.png")  # same name, another grid
    assert main([*base, "--out", str(tmp_path / "offgrid"), "--paired-t1", str(q1), "--paired-t2", str(q2)]) == 2
    assert "one voxel grid" in _err(capsys) and not (tmp_path / "offgrid").exists()
    out = tmp_path / "run"
    assert main([*base, "--out", str(out), "--paired-t1", str(p1), "--paired-t2", str(p2), "--lambda-paired", "5"]) == 0
    header, *rows = (out / "losses.csv").read_text().splitlines()
    col = header.split(",").index("loss_paired")
    assert rows and all(float(r.split(",")[col]) > 0 for r in rows)
    assert json.loads((out / "config.json").read_text())["train"]["lambda_paired"] == 5.0
    assert "3 co-registered T1/T2 pair(s)" in (out / "MODEL_CARD.md").read_text()


def test_train_with_tissue_balanced_discriminators_and_patch_nce_from_the_cli(image_folders, tmp_path):
    """--balance-d and --lambda-nce reach the config the run records and the trainer, which logs each set's class
    boundaries and saves the PatchNCE heads with the model."""
    out = tmp_path / "run"
    assert main(["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(out), "--quiet", *TRAIN_FLAGS,
                 "--balance-d", "--lambda-nce", "1"]) == 0
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["balance_d"] is True and train["lambda_nce"] == 1.0
    card = (out / "MODEL_CARD.md").read_text()
    assert "structure 1, PatchNCE 1; tissue-balanced discriminators." in card
    assert "tissue-balanced discriminators: t1 class boundaries" in (out / "train.log").read_text()
