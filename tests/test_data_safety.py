"""Nothing a user owns is lost or silently changed; every bad input is one line and exit 2, and only bad input is."""

import json
import os
import stat

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from mri_cyclegan.cli import main
from mri_cyclegan.errors import InputError
from mri_cyclegan.inference import Translator
from mri_cyclegan.io import read_image, read_nifti, write_nifti

from tests.conftest import TRAIN_FLAGS
from tests.phantoms import volume_pair


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    return lines[-1] if lines else ""


def _translate(run_dir, src, dst, *extra, direction="t1-to-t2"):
    return main(["translate", "--model", str(run_dir), "--direction", direction, str(src), str(dst), "--quiet", *extra])


def _scaled_nifti(path, shape=(30, 26, 6), slope=4.0, inter=100.0, extra_dim=False):
    a, _ = volume_pair(shape, seed=5)
    real = a / a.max() * 60000  # above what int16 holds without the slope
    raw = np.rint((real - inter) / slope).astype(np.int16)
    if extra_dim:
        raw = raw[..., None]
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    img = nib.Nifti1Image(raw, np.diag([1.0, 1.0, 2.0, 1.0]), header=hdr)
    img.header.set_slope_inter(slope, inter)
    nib.save(img, path)
    return path


# ---------------------------------------------------------------------------------------------- nothing is lost
def test_nifti_scaling_kept_and_values_exact(run_dir, tmp_path):
    src = _scaled_nifti(tmp_path / "scaled.nii.gz")
    out = tmp_path / "out.nii.gz"
    assert _translate(run_dir, src, out) == 0
    img = nib.load(out)
    assert img.get_data_dtype() == np.int16 and (img.dataobj.slope, img.dataobj.inter) == (4.0, 100.0)
    expected = Translator.from_checkpoint(run_dir, device="cpu").translate(read_nifti(src), "t1_to_t2")
    got = img.get_fdata()
    assert np.abs(got - expected).max() <= 2.0 + 1e-3  # half a quantisation step of slope 4
    assert got.max() > 40000  # above 32767: nothing saturated


def test_nifti_values_that_do_not_fit_are_written_as_float(tmp_path, caplog):
    src = read_nifti(_scaled_nifti(tmp_path / "s.nii.gz"))
    big = src.data * 10 - 50000  # far outside int16 with slope 4 / intercept 100
    write_nifti(tmp_path / "o.nii.gz", big, src.affine, src.header)
    img = nib.load(tmp_path / "o.nii.gz")
    assert img.get_data_dtype() == np.float32
    np.testing.assert_allclose(img.get_fdata(), big, rtol=0, atol=1e-2)
    assert "writing float32 instead of clipping" in caplog.text


def test_4d_with_one_volume_stays_4d(run_dir, tmp_path):
    src = _scaled_nifti(tmp_path / "v4.nii.gz", extra_dim=True)
    out = tmp_path / "o4.nii.gz"
    assert _translate(run_dir, src, out) == 0
    assert nib.load(out).shape == nib.load(src).shape == (30, 26, 6, 1)


def test_translate_refuses_to_overwrite_its_input(run_dir, image_folders, tmp_path, capsys):
    t1 = image_folders[0]
    before = {f.name: f.read_bytes() for f in t1.iterdir()}
    one = next(t1.glob("*.png"))
    assert _translate(run_dir, one, one) == 2
    assert "input itself" in _err(capsys)
    assert _translate(run_dir, t1, t1) == 2
    assert "input itself" in _err(capsys)
    assert _translate(run_dir, one, t1) == 2  # a file into its own folder: the output would be the file itself
    assert "one of the inputs" in _err(capsys)
    assert {f.name: f.read_bytes() for f in t1.iterdir()} == before


def test_output_inside_input_is_never_read_back(run_dir, image_folders, tmp_path, capsys):
    t1 = image_folders[0]
    n = len(list(t1.glob("*.png")))
    out = t1 / "translated"
    assert _translate(run_dir, t1, out) == 0
    assert _translate(run_dir, t1, out) == 2  # the outputs exist now
    assert "--overwrite" in _err(capsys)
    assert _translate(run_dir, t1, out, "--overwrite") == 0
    assert len(list(out.rglob("*.png"))) == n  # no translated/translated/...


def test_printed_path_is_the_written_path(run_dir, nifti_pair, tmp_path, capsys):
    out = tmp_path / "fake.nii.gz"
    assert _translate(run_dir, nifti_pair[0], out) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}" and out.is_file()
    assert _translate(run_dir, nifti_pair[0], tmp_path / "fake.png") == 2  # a volume is not written under an image name
    assert "fake.png" in _err(capsys) and not (tmp_path / "fake.png").exists()


def test_train_never_replaces_a_run_without_being_asked(run_dir, image_folders, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    ckpt, losses = run / "checkpoints" / "last.safetensors", run / "losses.csv"
    before = ckpt.read_bytes(), losses.read_text()
    args = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(run), "--quiet", *TRAIN_FLAGS]
    assert main(args) == 2
    assert "--overwrite" in _err(capsys)
    assert (ckpt.read_bytes(), losses.read_text()) == before
    (run / "notes.txt").write_text("mine")
    assert main([*args, "--overwrite"]) == 0
    assert ckpt.read_bytes() != before[0] and (run / "notes.txt").read_text() == "mine"


def test_written_files_have_normal_permissions(run_dir, image_folders, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "o.png"
        assert _translate(run_dir, next(image_folders[0].glob("*.png")), out) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
    finally:
        os.umask(old)
    for f in (run_dir / "checkpoints" / "last.safetensors", run_dir / "config.json", run_dir / "losses.csv"):
        # written under the session's own umask (not a private 0600 temporary file): readable by a colleague under 022
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~old, f


@pytest.mark.parametrize("dtype, name", [("uint16", "o.jpg"), ("uint16", "o.bmp"), ("float32", "o.png")])
def test_bit_depth_is_never_clipped_silently(run_dir, tmp_path, capsys, dtype, name):
    a, _ = volume_pair((40, 36, 1), seed=1)
    src = tmp_path / "in.tif"
    Image.fromarray((a[..., 0] * 60).astype(np.uint16) if dtype == "uint16" else a[..., 0].astype(np.float32)).save(src)
    assert read_image(src)[1].dtype == dtype
    assert _translate(run_dir, src, tmp_path / name) == 2
    assert name in _err(capsys) and not (tmp_path / name).exists()
    assert _translate(run_dir, src, tmp_path / "o.tif") == 0  # a format that holds it works
    assert Image.open(tmp_path / "o.tif").mode == Image.open(src).mode


# ------------------------------------------------------------------------- one line for bad input, and only for it
def test_decompression_bomb_is_one_line(tmp_path):
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    bomb = tmp_path / "bomb.png"
    head = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"\0" * 20001 * 4)) + chunk(b"IEND", b""))
    assert bomb.stat().st_size < 1000
    with pytest.raises(InputError, match="bomb.png"):
        read_image(bomb)  # refused by Pillow's own limit (~179 M pixels)
    head = struct.pack(">IIBBBBB", 13000, 12000, 8, 0, 0, 0, 0)  # 156 M pixels: under Pillow's limit, over ours
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"\0" * 13001 * 4)) + chunk(b"IEND", b""))
    with pytest.raises(InputError, match="claims 13000 x 12000"):
        read_image(bomb)


def test_nan_pixels_read_as_zero_and_all_nan_refused(tmp_path):
    a = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    a[3, 4] = np.nan
    Image.fromarray(a).save(tmp_path / "nan.tif")
    arr, info = read_image(tmp_path / "nan.tif")
    assert info.dtype == "float32" and arr[3, 4] == 0 and np.isfinite(arr).all()
    Image.fromarray(np.full((4, 4), np.nan, np.float32)).save(tmp_path / "all.tif")
    with pytest.raises(InputError, match="all.tif"):
        read_image(tmp_path / "all.tif")


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((20, 30), np.uint8)
    a[:5, :] = 255  # a bright top band in the stored pixels
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    im.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    arr, info = read_image(tmp_path / "r.jpg")
    assert arr.shape == (30, 20) and info.shape == (30, 20)
    assert arr[:, -5:].mean() > 200 and arr[:, :5].mean() < 50  # the band is on the right, as a viewer shows it


def test_parent_that_is_a_file_is_one_line(run_dir, image_folders, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert _translate(run_dir, next(image_folders[0].glob("*.png")), tmp_path / "afile" / "o.png") == 2
    assert "afile" in _err(capsys)
    args = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(tmp_path / "afile" / "run"), "--quiet", *TRAIN_FLAGS]
    assert main(args) == 2
    assert "afile" in _err(capsys)


@pytest.mark.parametrize("section, key, value", [
    ("data", "image_size", 32.0), ("data", "image_size", 2**20), ("model", "ngf", 10**5), ("model", "n_blocks", 10**6),
    ("train", "batch_size", "4"), ("model", "generator", "transformer"),
])  # fmt: skip
def test_checkpoint_config_is_validated(run_dir, image_folders, tmp_path, capsys, section, key, value):
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(run_dir / "checkpoints" / "last.safetensors"), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    cfg = json.loads(meta["config"])
    cfg[section][key] = value
    meta["config"] = json.dumps(cfg)
    save_file(tensors, tmp_path / "edited.safetensors", metadata=meta)
    assert _translate(tmp_path / "edited.safetensors", next(image_folders[0].glob("*.png")), tmp_path / "o.png") == 2
    msg = _err(capsys)
    assert "edited.safetensors" in msg and key in msg


@pytest.mark.parametrize("flags", [
    ["--image-size", "96", "--patch-size", "64", "--generator", "unet"], ["--image-size", "98", "--patch-size", "96"],
    ["--ngf", "100000"], ["--epochs", "4", "--epochs-decay", "5"],
])  # fmt: skip
def test_inconsistent_flags_are_one_line(image_folders, tmp_path, capsys, flags):
    args = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(tmp_path / "r"), "--quiet", *TRAIN_FLAGS, *flags]
    assert main(args) == 2
    assert _err(capsys).startswith("mri-cyclegan train: error:")
    assert not (tmp_path / "r").exists()


def test_a_bug_is_a_traceback_not_bad_input(monkeypatch):
    from mri_cyclegan import cli

    def broken(args):
        raise ValueError("an internal bug")

    monkeypatch.setattr(cli, "cmd_export", broken)
    with pytest.raises(ValueError, match="internal bug"):
        main(["export", "--model", "x", "o.onnx"])


# -------------------------------------------------------------------------------- semantics users expect
def test_epochs_is_the_total_and_the_second_half_decays(image_folders, tmp_path):
    flags = [f if prev != "--iters-per-epoch" else "1" for prev, f in zip([""] + TRAIN_FLAGS, TRAIN_FLAGS)]
    flags = [f for i, f in enumerate(flags) if f != "--epochs-decay" and (i == 0 or flags[i - 1] != "--epochs-decay")]
    run = tmp_path / "r"
    args = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(run), "--quiet", *flags]
    args[args.index("--epochs") + 1] = "4"
    assert main(args) == 0
    rows = (run / "losses.csv").read_text().splitlines()[1:]
    lrs = [float(r.split(",")[-1]) for r in rows]
    assert len(rows) == 4 and lrs[:2] == [2e-4, 2e-4] and lrs[2] < 2e-4 and lrs[3] < lrs[2]


def test_resume_with_a_conflicting_config_file_stops(run_dir, image_folders, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    cfg = tmp_path / "other.yaml"
    cfg.write_text("model:\n  ngf: 16\n")
    args = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(run), "--resume", "--quiet", "--config", str(cfg)]
    assert main(args) == 2
    assert "model.ngf" in _err(capsys)


def test_quiet_is_quiet(image_folders, tmp_path, capsys):
    args = ["train", "--t1", str(image_folders[0]), "--t2", str(image_folders[1]), "--out", str(tmp_path / "r"), "--quiet", *TRAIN_FLAGS]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "INFO" not in captured.err and captured.err.strip() == ""
    assert "INFO" in (tmp_path / "r" / "train.log").read_text()  # the log file still has everything


def test_demo_folder_is_protected_too(tmp_path):
    from mri_cyclegan.run_folder import prepare_run_folder

    run = tmp_path / "demo_out" / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / ".tmp-abc.safetensors").write_bytes(b"half")
    with pytest.raises(InputError, match="--overwrite") as e:
        prepare_run_folder(run, resume=False, overwrite=False, shown=tmp_path / "demo_out", can_resume=False)
    assert "--resume" not in str(e.value) and "demo_out " in str(e.value)
    prepare_run_folder(run, resume=False, overwrite=True)
    assert not (run / "checkpoints").exists() and not list(run.rglob(".tmp-*"))
