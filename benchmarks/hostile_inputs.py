"""Hostile and careless inputs against `mri-cyclegan translate` (and `train --config`): every crafted file must end in
one line and exit 2, destroy nothing, read nothing outside its folder, stay under 2 GB and 20 s.

    python benchmarks/hostile_inputs.py            # builds ~65 cases in a temp folder, runs each as a new process

Per case: exit code, lines on stderr, peak memory (ru_maxrss of the process), wall time, files changed or created
outside the plan (a hash of everything in the case folder and of a secret file planted next to it, before and after),
and whether any output holds the planted secret's bytes. Writes benchmarks/results/hostile_inputs.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import machine, write_json  # noqa: E402

SECRET = b"PLANTED-SECRET-" + os.urandom(16).hex().encode() + b"-" * 200  # 247 bytes
DRIVER = r"""
import json, os, resource, sys, torch
torch.set_num_threads(1)
from mri_cyclegan.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code if isinstance(e.code, int) else 1
with open(os.environ["RSS_OUT"], "w") as f:
    json.dump({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, f)
sys.exit(rc)
"""


def snapshot(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p)] = "link:" + os.readlink(p)
        elif p.is_file():
            out[str(p)] = hashlib.sha1(p.read_bytes()).hexdigest()
        elif p.exists() and not p.is_dir():
            out[str(p)] = "special"
    return out


def volume(shape=(24, 20, 8), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.random(shape).astype(np.float32) * 100
    v[4:-4, 4:-4, 2:-2] += 300
    return v


def nifti(path: Path, data=None, affine=None, dtype=None, edit=None) -> Path:
    img = nib.Nifti1Image(volume() if data is None else data, np.eye(4) if affine is None else affine)
    if dtype is not None:
        img.set_data_dtype(dtype)
    if edit:
        edit(img.header)
    nib.save(img, path)
    return path


def raw_nifti_header(path: Path, shape, dtype=np.int16, tail: bytes = b"\0" * 4) -> Path:
    h = nib.Nifti1Header()
    h.set_data_shape(shape)
    h.set_data_dtype(dtype)
    path.write_bytes(h.binaryblock + tail)
    return path


def mhd(folder: Path, name="scan", edit=None, ext=".mhd") -> Path:
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(volume().astype(np.int16).transpose(2, 1, 0)), str(folder / f"{name}{ext}"))
    header = folder / f"{name}{ext}"
    if edit:
        header.write_text(edit(header.read_text()))
    return header


def set_line(key: str, value: str, sep=" = "):
    def edit(text: str) -> str:
        return "\n".join(f"{key}{sep}{value}" if ln.split(sep.strip())[0].strip().lower() == key.lower() else ln for ln in text.splitlines()) + "\n"

    return edit


def dicom_series(folder: Path, edit=None, n=4) -> Path:
    from tests.io.test_formats import phantom, write_series

    import pydicom

    write_series(folder, phantom(shape=(16, 12, n)))
    if edit:
        for f in folder.iterdir():
            ds = pydicom.dcmread(str(f))
            edit(ds)
            ds.save_as(str(f))
    return next(folder.iterdir())


def png(path: Path, arr=None, **save) -> Path:
    from PIL import Image

    Image.fromarray(np.full((32, 32), 120, np.uint8) if arr is None else arr).save(path, **save)
    return path


def build_cases(base: Path, ckpt: Path) -> list[dict]:
    """Each case: name, argv (translate ... unless given), expect ('refuse' or 'ok')."""
    cases: list[dict] = []

    def case(name: str, make, out_name: str = "out.nii.gz", expect: str = "refuse", argv=None):
        d = base / name
        (d / "in").mkdir(parents=True)
        src = make(d / "in")
        out = d / "out" / out_name
        args = argv(d, src) if argv else ["translate", str(src), str(out), "--model", str(ckpt), "--direction", "t1-to-t2", "--quiet"]
        cases.append({"name": name, "dir": d, "argv": args, "expect": expect})

    # ---- NIfTI / MGH
    case("nifti_ok", lambda d: nifti(d / "a.nii.gz"), expect="ok")
    for n, shape in (("nifti_claims_119GiB", (4000, 4000, 4000)), ("nifti_claims_6GB", (1500, 1500, 1400)),
                     ("nifti_claims_2e9_voxels", (2000, 1000, 1000)), ("nifti_zero_dim", (0, 10, 10))):
        case(n, lambda d, s=shape: raw_nifti_header(d / "a.nii", s))
    case("nifti_gz_bomb_header", lambda d: nifti(d / "a.nii.gz", data=np.zeros((8, 8, 8), np.int16),
                                                  edit=lambda h: None) and _gz_claims(d / "a.nii.gz"))
    case("nifti_4d_5_frames", lambda d: nifti(d / "a.nii.gz", data=np.stack([volume()] * 5, -1)))
    case("nifti_complex64", lambda d: nifti(d / "a.nii.gz", data=(volume() + 1j).astype(np.complex64)))
    case("nifti_complex128", lambda d: nifti(d / "a.nii.gz", data=(volume() + 1j).astype(np.complex128)))
    case("nifti_rgb24", lambda d: _rgb_nifti(d / "a.nii.gz"))
    for n, aff in (("nifti_nan_affine", np.diag([np.nan, 1, 1, 1])), ("nifti_zero_spacing", np.diag([1, 0, 1, 1])),
                   ("nifti_huge_spacing", np.diag([1000.0, 1000.0, 1, 1])), ("nifti_tiny_spacing", np.diag([1e-4, 1e-4, 1, 1])),
                   ("nifti_parallel_axes", np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]))):
        case(n, lambda d, a=aff: _sform_nifti(d / "a.nii.gz", a))
    case("nifti_truncated", lambda d: _truncate(nifti(d / "a.nii.gz"), 200))
    case("nifti_empty_file", lambda d: _write(d / "a.nii.gz", b""))
    case("nifti_not_gzip", lambda d: _write(d / "a.nii.gz", b"hello" * 100))
    case("nifti_constant", lambda d: nifti(d / "a.nii.gz", data=np.ones((8, 8, 8), np.float32)))
    case("nifti_all_nan", lambda d: nifti(d / "a.nii.gz", data=np.full((8, 8, 8), np.nan, np.float32)))
    case("mgz_96_frames", lambda d: _mgh(d / "a.mgz", np.zeros((8, 8, 8, 96), np.float32)))
    case("mgz_nan_affine", lambda d: _mgh(d / "a.mgz", volume(), np.diag([np.nan, 1, 1, 1])))
    # ---- detached MetaImage / NRRD headers
    case("mhd_ok", lambda d: mhd(d), out_name="o.nii.gz", expect="ok")
    for n, value in (("mhd_absolute_etc_passwd", "/etc/passwd"), ("mhd_parent_secret", "../../secret.raw"),
                     ("mhd_dev_urandom", "/dev/urandom"), ("mhd_missing_data", "gone.raw"), ("mhd_list", "LIST"),
                     ("mhd_pattern", "slice%03d.raw 1 4 1")):
        case(n, lambda d, v=value: mhd(d, edit=set_line("ElementDataFile", v)))
    case("mhd_symlink_escape", lambda d: (os.symlink(d.parent.parent / "secret.raw", d / "link.raw"), mhd(d, edit=set_line("ElementDataFile", "link.raw")))[1])
    case("mhd_fifo", lambda d: (os.mkfifo(d / "pipe.raw"), mhd(d, edit=set_line("ElementDataFile", "pipe.raw")))[1])
    case("mhd_truncated_raw", lambda d: (mhd(d), _truncate(d / "scan.raw", 100))[0])
    case("mhd_claims_huge", lambda d: mhd(d, edit=set_line("DimSize", "3000 3000 3000")))
    case("mhd_zero_direction", lambda d: mhd(d, edit=set_line("TransformMatrix", "0 0 0 0 0 0 0 0 0")))
    case("mhd_nan_spacing", lambda d: mhd(d, edit=set_line("ElementSpacing", "nan 1 1")))
    case("mhd_zero_spacing", lambda d: mhd(d, edit=set_line("ElementSpacing", "0 1 1")))
    case("mha_zlib_claims_huge", lambda d: _mha_bomb(d / "a.mha"))
    case("nhdr_absolute", lambda d: mhd(d, ext=".nhdr", edit=set_line("data file", "/etc/passwd", ": ")))
    case("nhdr_parent", lambda d: mhd(d, ext=".nhdr", edit=set_line("data file", "../../secret.raw", ": ")))
    case("nhdr_claims_huge", lambda d: mhd(d, ext=".nhdr", edit=set_line("sizes", "3000 3000 3000", ": ")))
    # ---- DICOM
    case("dicom_ok", lambda d: dicom_series(d / "s"), expect="ok")
    for n, edit in (("dicom_negative_spacing", lambda ds: setattr(ds, "PixelSpacing", ["-0.9", "0.8"])),
                    ("dicom_non_unit_iop", lambda ds: setattr(ds, "ImageOrientationPatient", ["2", "0", "0", "0", "2", "0"])),
                    ("dicom_slope_zero", lambda ds: setattr(ds, "RescaleSlope", "0")),
                    ("dicom_huge_rows", lambda ds: (setattr(ds, "Rows", 65535), setattr(ds, "Columns", 65535))),
                    ("dicom_no_position", lambda ds: delattr(ds, "ImagePositionPatient")),
                    ("dicom_nan_position", lambda ds: setattr(ds, "ImagePositionPatient", ["nan", "0", "0"]))):
        case(n, lambda d, e=edit: dicom_series(d / "s", e))
    case("dicom_deflate_bomb", lambda d: _deflate_bomb(d / "s"))
    # ---- 2D images
    case("png_ok", lambda d: png(d / "a.png"), out_name="a.png", expect="ok")
    case("tiff_8_pages", lambda d: _multipage(d / "a.tif"), out_name="a.tif")
    case("png_truncated", lambda d: _truncate(png(d / "a.png", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)), 60), out_name="a.png")
    case("png_empty", lambda d: _write(d / "a.png", b""), out_name="a.png")
    case("png_pixel_bomb", lambda d: _png_bomb(d / "a.png"), out_name="a.png")
    case("png_16bit_to_jpg", lambda d: png(d / "a.png", np.full((32, 32), 40000, np.uint16)), out_name="a.jpg")
    # ---- outputs that would destroy or collide
    case("mhd_to_nhdr_same_folder", lambda d: mhd(d), argv=lambda d, s: ["translate", str(s), str(s.with_suffix(".nhdr")), "--model", str(ckpt), "--direction", "t1-to-t2", "--direction", "t1-to-t2", "--quiet"])
    case("output_raw_exists", lambda d: (mhd(d), (d.parent / "out").mkdir(), _write(d.parent / "out" / "result.raw", b"mine"))[0],
         argv=lambda d, s: ["translate", str(s), str(d / "out" / "result.mhd"), "--model", str(ckpt), "--direction", "t1-to-t2", "--quiet", "--overwrite"])
    case("mhd_and_nhdr_one_stem", lambda d: (mhd(d, "a"), mhd(d, "b", ext=".nhdr"), (d / "b.nhdr").rename(d / "a.nhdr"))[0],
         argv=lambda d, s: ["translate", str(s.parent), str(d / "out"), "--model", str(ckpt), "--direction", "t1-to-t2", "--direction", "t1-to-t2", "--quiet"])
    case("output_is_input", lambda d: nifti(d / "a.nii.gz"), argv=lambda d, s: ["translate", str(s), str(s), "--model", str(ckpt), "--direction", "t1-to-t2", "--direction", "t1-to-t2", "--quiet"])
    case("output_exists_no_overwrite", lambda d: (nifti(d / "a.nii.gz"), (d.parent / "out").mkdir(), _write(d.parent / "out" / "o.nii.gz", b"mine"))[0],
         argv=lambda d, s: ["translate", str(s), str(d / "out" / "o.nii.gz"), "--model", str(ckpt), "--direction", "t1-to-t2", "--direction", "t1-to-t2", "--quiet"])
    case("bids_nii_beside_nii_gz", lambda d: _bids_dup(d), argv=lambda d, s: ["translate", str(s), "--model", str(ckpt), "--direction", "t1-to-t2", "--direction", "t1-to-t2", "--quiet"])
    case("bids_sidecar_exists", lambda d: _bids_sidecar(d), argv=lambda d, s: ["translate", str(s), "--model", str(ckpt), "--direction", "t1-to-t2", "--direction", "t1-to-t2", "--quiet"])
    # ---- checkpoints, ONNX, configs
    case("ckpt_nan_lut", lambda d: nifti(d / "a.nii.gz"), argv=lambda d, s: ["translate", str(s), str(d / "out" / "o.nii.gz"), "--model", str(_nan_ckpt(d, ckpt)), "--direction", "t1-to-t2", "--quiet"])
    case("ckpt_truncated", lambda d: nifti(d / "a.nii.gz"), argv=lambda d, s: ["translate", str(s), str(d / "out" / "o.nii.gz"), "--model", str(_truncate(_copy(ckpt, d / "c.safetensors"), 500)), "--direction", "t1-to-t2", "--quiet"])
    case("ckpt_not_a_checkpoint", lambda d: nifti(d / "a.nii.gz"), argv=lambda d, s: ["translate", str(s), str(d / "out" / "o.nii.gz"), "--model", str(_write(d / "c.safetensors", b"x" * 64)), "--direction", "t1-to-t2", "--quiet"])
    case("onnx_junk", lambda d: nifti(d / "a.nii.gz"), argv=lambda d, s: ["translate", str(s), str(d / "out" / "o.nii.gz"), "--model", str(ckpt), "--onnx", str(_write(d / "m.onnx", b"junk")), "--direction", "t1-to-t2", "--quiet"])
    case("onnx_missing", lambda d: nifti(d / "a.nii.gz"), argv=lambda d, s: ["translate", str(s), str(d / "out" / "o.nii.gz"), "--model", str(ckpt), "--onnx", str(d / "none.onnx"), "--direction", "t1-to-t2", "--quiet"])
    case("config_100k_deep_yaml", lambda d: _write(d / "c.yaml", b"[" * 100_000 + b"]" * 100_000),
         argv=lambda d, s: ["train", "--t1", str(d / "in"), "--t2", str(d / "in"), "--out", str(d / "run"), "--config", str(s), "--quiet"])
    case("config_100k_deep_json", lambda d: _write(d / "c.json", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
         argv=lambda d, s: ["train", "--t1", str(d / "in"), "--t2", str(d / "in"), "--out", str(d / "run"), "--config", str(s), "--quiet"])
    case("train_missing_t1", lambda d: nifti(d / "a.nii.gz"),
         argv=lambda d, s: ["train", "--t1", str(d / "nope"), "--t2", str(d / "in"), "--out", str(d / "run"), "--quiet"])
    case("evaluate_out_is_file", lambda d: _write(d / "f.txt", b"mine"),
         argv=lambda d, s: ["evaluate", "--pred", str(d / "in"), "--ref", str(d / "in"), "--out", str(s)])
    return cases


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _truncate(path: Path, n: int) -> Path:
    path.write_bytes(path.read_bytes()[:n])
    return path


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def _gz_claims(path: Path) -> Path:
    """A small .nii.gz whose header claims 2000^3 voxels of zeros (the data would decompress to GBs)."""
    import gzip

    h = nib.Nifti1Header()
    h.set_data_shape((2000, 2000, 2000))
    h.set_data_dtype(np.int16)
    with gzip.open(path, "wb") as f:
        f.write(h.binaryblock + b"\0" * 4)
        for _ in range(64):
            f.write(b"\0" * (1 << 20))
    return path


def _rgb_nifti(path: Path) -> Path:
    rgb = np.zeros((8, 8, 8), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), path)
    return path


def _sform_nifti(path: Path, aff: np.ndarray) -> Path:
    img = nib.Nifti1Image(volume(), None)
    img.header.set_sform(aff, code=1)
    img.header.set_qform(None, code=0)
    nib.save(img, path)
    return path


def _mgh(path: Path, data: np.ndarray, affine=None) -> Path:
    img = nib.MGHImage(data.astype(np.float32), np.eye(4) if affine is None else affine)
    nib.save(img, path)
    return path


def _mha_bomb(path: Path) -> Path:
    import zlib

    payload = zlib.compress(b"\0" * (64 << 20), 9)
    header = ("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\nCompressedData = True\n"
              f"CompressedDataSize = {len(payload)}\nDimSize = 2000 2000 2000\nElementType = MET_SHORT\nElementDataFile = LOCAL\n")
    path.write_bytes(header.encode() + payload)
    return path


def _deflate_bomb(folder: Path) -> Path:
    """A deflated DICOM (one slice) whose body inflates to 1.25 GiB of zeros (file ~1.3 MB)."""
    import zlib

    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    first = dicom_series(folder, n=1)
    ds = pydicom.dcmread(str(first))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(str(first), enforce_file_format=True)
    meta = pydicom.filereader.read_file_meta_info(str(first))
    head = first.read_bytes()[: 132 + 12 + int(meta.FileMetaInformationGroupLength)]
    comp = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = b"".join(comp.compress(b"\0" * (1 << 26)) for _ in range(20)) + comp.flush()
    first.write_bytes(head + body)
    return first


def _multipage(path: Path) -> Path:
    from PIL import Image

    pages = [Image.fromarray(np.full((32, 32), i * 20, np.uint8)) for i in range(8)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


def _png_bomb(path: Path) -> Path:
    """A PNG header claiming 60000 x 60000 pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    return path


def _bids(root: Path) -> Path:
    (root / "sub-01" / "anat").mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x", "BIDSVersion": "1.9.0"}))
    nifti(root / "sub-01" / "anat" / "sub-01_T1w.nii.gz")
    return root


def _bids_dup(d: Path) -> Path:
    root = _bids(d / "ds")
    nifti(root / "sub-01" / "anat" / "sub-01_T1w.nii")
    return root


def _bids_sidecar(d: Path) -> Path:
    root = _bids(d / "ds")
    side = root / "derivatives" / "mri-cyclegan" / "sub-01" / "anat" / "sub-01_desc-synthetic_T2w.json"
    side.parent.mkdir(parents=True)
    side.write_text('{"mine": true}')
    return root


def _nan_ckpt(d: Path, ckpt: Path) -> Path:
    import torch

    from mri_cyclegan.checkpoints import load_checkpoint, save_checkpoint

    tensors, meta, _ = load_checkpoint(ckpt)
    key = next(k for k in tensors if k.endswith("prior.lut"))
    tensors = dict(tensors)
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_checkpoint(d / "nan.safetensors", tensors, meta)
    return d / "nan.safetensors"


def tiny_checkpoint(base: Path) -> Path:
    from tests.conftest import TRAIN_FLAGS, make_image_folders

    t1, t2 = make_image_folders(base / "train_data")
    out = base / "model"
    subprocess.run([sys.executable, "-m", "mri_cyclegan.cli", "train", "--t1", str(t1), "--t2", str(t2), "--out", str(out), "--quiet", *TRAIN_FLAGS],
                   check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    return out / "checkpoints" / "last.safetensors"


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="hostile_"))
    ckpt = tiny_checkpoint(base)
    (base / "cases").mkdir()
    (base / "secret.raw").write_bytes(SECRET)  # planted next to every case folder's parent ('../../secret.raw' from in/)
    cases = build_cases(base / "cases", ckpt)
    (base / "cases" / "secret.raw").write_bytes(SECRET)
    rows = []
    for c in cases:
        d: Path = c["dir"]
        before = snapshot(d)
        secret_before = hashlib.sha1((base / "cases" / "secret.raw").read_bytes()).hexdigest()
        rss = d / "rss.json"
        t0 = time.perf_counter()
        try:
            p = subprocess.run([sys.executable, "-c", DRIVER, *c["argv"]], capture_output=True, timeout=60,
                               env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "RSS_OUT": str(rss)})
            rc, err = p.returncode, p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, err = "timeout", ""
        wall = time.perf_counter() - t0
        after = snapshot(d)
        changed = sorted(k for k in before if after.get(k) != before[k])
        new = [k for k in after if k not in before and not k.endswith("rss.json")]
        leaked = [k for k in new if Path(k).is_file() and SECRET[:40] in Path(k).read_bytes()]
        created = new if c["expect"] == "refuse" else []
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        mem = json.loads(rss.read_text())["maxrss_kb"] / 1024 if rss.is_file() else float("nan")
        ok_exit = (rc == 2 and len(lines) == 1) if c["expect"] == "refuse" else rc == 0
        row = {"case": c["name"], "expect": c["expect"], "rc": rc, "stderr_lines": len(lines), "first_line": lines[0][:200] if lines else "",
               "peak_mb": round(mem, 1), "seconds": round(wall, 2), "changed": changed, "created_by_refused": created, "leaked": leaked,
               "secret_intact": hashlib.sha1((base / "cases" / "secret.raw").read_bytes()).hexdigest() == secret_before,
               "pass": bool(ok_exit and not changed and not leaked and not created and mem < 2048 and wall < 20)}
        rows.append(row)
        print(f"{'PASS' if row['pass'] else 'FAIL'} {c['name']:<28} rc={rc!s:<7} lines={len(lines)} {mem:7.0f} MB {wall:5.1f} s  {row['first_line'][:110]}", flush=True)
    n = len(rows)
    summary = {"cases": n, "passed": sum(r["pass"] for r in rows), "files_destroyed": sum(len(r["changed"]) for r in rows),
               "outputs_from_refused_inputs": sum(len(r["created_by_refused"]) for r in rows), "secret_leaks": sum(len(r["leaked"]) for r in rows),
               "max_peak_mb": max(r["peak_mb"] for r in rows), "max_seconds": max(r["seconds"] for r in rows),
               "refused_with_one_line_exit_2": sum(r["rc"] == 2 and r["stderr_lines"] == 1 for r in rows if r["expect"] == "refuse"),
               "refuse_cases": sum(r["expect"] == "refuse" for r in rows)}
    print(json.dumps(summary, indent=1))
    print("wrote", write_json("hostile_inputs.json", {"machine": machine(), "summary": summary, "cases": rows}))


def _within(p: Path, folder: Path) -> bool:
    try:
        p.relative_to(folder)
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    main()
