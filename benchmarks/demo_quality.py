"""Run the demo for a given budget and print model vs baselines on the held-out slices.

    python benchmarks/demo_quality.py --minutes 10 [--out /tmp/demo_bench]

Writes benchmarks/results/demo_quality.json.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402

from mri_cyclegan.demo import run_demo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--out", default="/tmp/mri_cyclegan_demo_bench")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    t = time.perf_counter()
    m = run_demo(args.out, minutes=args.minutes, progress=False, seed=args.seed)
    wall = time.perf_counter() - t
    print(f"\ndemo, {args.minutes} min budget: {m['iterations']} iterations, train {m['train_seconds']:.0f} s, total {wall:.0f} s, {m['n_test_slices']} test slices")
    print(f"{'direction':<10} {'method':<18} {'PSNR dB':>8} {'SSIM':>7} {'MAE':>7}")
    for d in ("t1_to_t2", "t2_to_t1"):
        for meth in ("model", "inverse_histogram", "identity"):
            s = m[d][meth]
            print(f"{d:<10} {meth:<18} {s['psnr']:>8.2f} {s['ssim']:>7.4f} {s['mae']:>7.4f}")
        print(f"{d:<10} {'model - inv.hist':<18} {m[d]['model']['psnr'] - m[d]['inverse_histogram']['psnr']:>+8.2f} "
              f"{m[d]['model']['ssim'] - m[d]['inverse_histogram']['ssim']:>+7.4f}")
    out = {"machine": machine(), "minutes": args.minutes, "total_seconds": round(wall, 1),
           **{k: v for k, v in m.items() if k != "config"},
           "config": m["config"]}
    for d in ("t1_to_t2", "t2_to_t1"):
        out[d] = {k: v for k, v in m[d].items() if k != "per_image"}
    print("wrote", write_json("demo_quality.json", out))


if __name__ == "__main__":
    main()
