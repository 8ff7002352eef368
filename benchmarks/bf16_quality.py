"""bf16 vs fp32 translation quality of a trained demo model on the held-out demo slabs (native resolution).

    python benchmarks/bf16_quality.py --run /tmp/mri_cyclegan_demo_bench/run

Writes benchmarks/results/bf16_quality.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402

from mri_cyclegan.data.demo import demo_split  # noqa: E402
from mri_cyclegan.demo import score_demo  # noqa: E402
from mri_cyclegan.inference import Translator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="/tmp/mri_cyclegan_demo_bench/run")
    args = ap.parse_args()
    out = {}
    for precision in ("fp32", "bf16"):
        tr = Translator.from_checkpoint(args.run, device="cpu", precision=precision)
        split = demo_split(tr.config.data)
        out[precision] = {r.direction: r.summaries["model"] for r in score_demo(tr, split)}
    print(f"{'direction':<10} {'fp32 PSNR':>9} {'bf16 PSNR':>9} {'Δ dB':>7} {'fp32 SSIM':>9} {'bf16 SSIM':>9} {'Δ':>8}")
    for d in ("t1_to_t2", "t2_to_t1"):
        a, b = out["fp32"][d], out["bf16"][d]
        print(f"{d:<10} {a['psnr']:>9.3f} {b['psnr']:>9.3f} {b['psnr'] - a['psnr']:>+7.3f} {a['ssim']:>9.4f} {b['ssim']:>9.4f} {b['ssim'] - a['ssim']:>+8.4f}")
    print("wrote", write_json("bf16_quality.json", {"machine": machine(), **out}))


if __name__ == "__main__":
    main()
