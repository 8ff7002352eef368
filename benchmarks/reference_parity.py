"""Wall-clock at equal work against the reference CycleGAN (a faithful replica of its training path,
reference_replica.py): the same seed-style PNG folders, the same network (ResNet-6 ngf 32, PatchGAN ndf 64),
96², batch 4, identity loss 0.5, the same number of iterations; each run alone, end to end (start-up, data
loading, per-epoch work and checkpoints included), then the median training step of each.

    python benchmarks/reference_parity.py [--iters 240] [--work /tmp/parity]

Writes benchmarks/results/reference_parity.json.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, matmul_peak_gflops, write_json  # noqa: E402
from user_path import build  # noqa: E402


def _run(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    return time.perf_counter() - t, p.stdout + p.stderr


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=240)
    ap.add_argument("--work", default="/tmp/parity")
    args = ap.parse_args()
    work = Path(args.work)
    dirs = build(work)
    n = max(len(list(dirs["train_t1"].iterdir())), len(list(dirs["train_t2"].iterdir())))
    per_epoch = math.ceil(n / 4)
    epochs = math.ceil(args.iters / per_epoch)
    peak = matmul_peak_gflops(torch.float32)

    ref_out = work / "reference"
    shutil.rmtree(ref_out, ignore_errors=True)
    ref_wall, ref_log = _run([sys.executable, str(Path(__file__).parent / "reference_replica.py"), "--t1", str(dirs["train_t1"]),
                              "--t2", str(dirs["train_t2"]), "--out", str(ref_out), "--iters", str(epochs * per_epoch)])
    m = re.search(r"median_step_s=([\d.]+) sum_step_s=([\d.]+)", ref_log)
    ref_step, ref_sum = float(m.group(1)), float(m.group(2))

    ours_out = work / "ours"
    shutil.rmtree(ours_out, ignore_errors=True)
    ours_wall, _ = _run([sys.executable, "-m", "mri_cyclegan", "train", "--t1", str(dirs["train_t1"]), "--t2", str(dirs["train_t2"]),
                         "--out", str(ours_out), "--image-size", "96", "--ngf", "32", "--n-blocks", "6", "--batch-size", "4",
                         "--lambda-identity", "0.5", "--epochs", str(epochs), "--quiet"])
    stamps = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f") for line in open(ours_out / "train.log")
              if "training on" in line or re.search(r"epoch \d+/\d+:", line)]
    loop_s = (stamps[-1] - stamps[0]).total_seconds()  # "training on ..." to the last epoch's line
    result = {
        "machine": machine(), "fp32_peak_gflops": round(peak, 1), "iterations": epochs * per_epoch, "epochs": epochs, "images_per_domain": n,
        "reference": {"wall_s": round(ref_wall, 1), "median_step_s": ref_step, "sum_step_s": ref_sum},
        "ours": {"wall_s": round(ours_wall, 1), "loop_s_per_iter": round(loop_s / (epochs * per_epoch), 4), "loop_s": round(loop_s, 1)},
    }
    result["wall_ratio"] = round(ours_wall / ref_wall, 3)
    r, o = result["reference"], result["ours"]
    print(f"{'':>10} {'wall s':>8} {'per iteration s':>16}")
    print(f"{'reference':>10} {r['wall_s']:>8.1f} {r['median_step_s']:>16.3f}  (median train step; steps alone sum to {r['sum_step_s']:.1f} s)")
    print(f"{'ours':>10} {o['wall_s']:>8.1f} {o['loop_s_per_iter']:>16.3f}  (training loop incl. per-epoch samples/checkpoints / iterations)")
    print(f"ours / reference wall: {result['wall_ratio']:.3f} ({result['iterations']} iterations, {epochs} epochs of {per_epoch})")
    print("wrote", write_json("reference_parity.json", result))


if __name__ == "__main__":
    main()
