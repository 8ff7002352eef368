"""The plain user path, as a new user runs it: default `mri-cyclegan train` on a seed-style folder pair, then
`translate` and `evaluate` at native resolution on slices it never saw, against the lookup-table baseline.

    python benchmarks/user_path.py [--work /tmp/user_path] [--minutes-limit 15]

Data (built from the embedded ICBM 2009c volumes, 1 mm): about 45 unpaired 8-bit RGB PNGs per contrast at
181x217 (the Kaggle-style layout the seed projects used), T1 from even and T2 from odd training slices (never
the same slice), and the demo's held-out slabs as paired 16-bit PNGs with brain masks. Writes
benchmarks/results/user_path.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402

from mri_cyclegan.data.demo import load_demo_volumes, split_slabs  # noqa: E402
from mri_cyclegan.io.geometry import slices  # noqa: E402

SHAPE = (217, 181)  # rows x columns of the seed-style slices


def _pad(sl: np.ndarray) -> np.ndarray:
    out = np.zeros(SHAPE, np.float32)
    oy, ox = (SHAPE[0] - sl.shape[0]) // 2, (SHAPE[1] - sl.shape[1]) // 2
    out[oy : oy + sl.shape[0], ox : ox + sl.shape[1]] = sl
    return out


def build(work: Path) -> dict[str, Path]:
    v = load_demo_volumes()
    train_z, test_z = split_slabs(v.mask)
    dirs = {k: work / k for k in ("train_t1", "train_t2", "test_t1", "test_t2", "test_mask")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    t1s, t2s, ms = slices(v.t1, "axial"), slices(v.t2, "axial"), slices(v.mask.astype(np.float32), "axial")
    frac = np.array([m.mean() for m in ms])
    usable = [z for z in train_z if frac[z] > 0.15 * frac.max()]
    for name, vol_slices, zs in (("train_t1", t1s, usable[0::2]), ("train_t2", t2s, usable[1::2])):
        top = np.percentile(np.concatenate([s.ravel() for s in vol_slices]), 99.8)
        for z in zs[:46]:
            g = np.clip(_pad(vol_slices[z]) / top * 255, 0, 255).astype(np.uint8)
            Image.fromarray(np.stack([g, g, g], -1)).save(dirs[name] / f"slice_{z:03d}.png")  # RGB, 8-bit
    for z in test_z:
        for name, vol_slices, scale in (("test_t1", t1s, 16), ("test_t2", t2s, 16)):
            Image.fromarray(np.clip(_pad(vol_slices[z]) * scale, 0, 65535).astype(np.uint16)).save(dirs[name] / f"slice_{z:03d}.png")
        Image.fromarray((_pad(ms[z]) > 0.5).astype(np.uint8) * 255).save(dirs["test_mask"] / f"slice_{z:03d}.png")
    return dirs


def cli(*args: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mri_cyclegan", *args], check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/mri_cyclegan_user_path")
    ap.add_argument("--minutes-limit", type=float, default=15.0)
    args = ap.parse_args()
    work = Path(args.work)
    if work.exists():
        import shutil

        shutil.rmtree(work)
    d = build(work)
    n1, n2 = len(list(d["train_t1"].iterdir())), len(list(d["train_t2"].iterdir()))
    run = work / "run"
    train_s = cli("train", "--t1", str(d["train_t1"]), "--t2", str(d["train_t2"]), "--out", str(run), "--quiet")
    res = {}
    for direction, src, ref in (("t1-to-t2", "test_t1", "test_t2"), ("t2-to-t1", "test_t2", "test_t1")):
        pred = work / f"pred_{direction}"
        cli("translate", "--model", str(run), "--direction", direction, str(d[src]), str(pred), "--quiet")
        ev = work / f"eval_{direction}"
        cli("evaluate", "--pred", str(pred), "--ref", str(d[ref]), "--mask", str(d["test_mask"]), "--input", str(d[src]),
            "--model", str(run), "--direction", direction, "--out", str(ev), "--quiet")
        m = json.loads((ev / "metrics.json").read_text())[direction.replace("-", "_")]
        res[direction] = {k: {x: m[k][x] for x in ("psnr", "ssim", "mae", "n")} for k in ("model", "inverse_histogram", "identity")}
    cfg = json.loads((run / "config.json").read_text())
    iters = len((run / "losses.csv").read_text().splitlines()) - 1
    print(f"\ndefault train on {n1} T1 / {n2} T2 RGB PNGs ({SHAPE[1]}x{SHAPE[0]}): {iters} iterations, {train_s / 60:.1f} min "
          f"(limit {args.minutes_limit:g}); scored on {res['t1-to-t2']['model']['n']} held-out 16-bit slices at native size, brain mask")
    print(f"{'direction':<10} {'method':<18} {'PSNR dB':>8} {'SSIM':>7} {'MAE':>7}")
    for direction, methods in res.items():
        for meth, s in methods.items():
            print(f"{direction:<10} {meth:<18} {s['psnr']:>8.2f} {s['ssim']:>7.4f} {s['mae']:>7.4f}")
        mo, lut = methods["model"], methods["inverse_histogram"]
        print(f"{direction:<10} {'model - inv.hist':<18} {mo['psnr'] - lut['psnr']:>+8.2f} {mo['ssim'] - lut['ssim']:>+7.4f}")
    out = {"machine": machine(), "train_minutes": round(train_s / 60, 2), "iterations": iters, "n_t1": n1, "n_t2": n2,
           "within_limit": train_s / 60 <= args.minutes_limit, "results": res, "config": cfg}
    print("wrote", write_json("user_path.json", out))


if __name__ == "__main__":
    main()
