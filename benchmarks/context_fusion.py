"""2.5D: the centre channel vs the mean of the K predictions of each slice, for a trained demo model with K > 1.

    python benchmarks/context_fusion.py --run /tmp/demo_k3/run

Held-out demo slabs, native 1 mm, brain mask (the demo's protocol). Writes benchmarks/results/context_fusion.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402

from mri_cyclegan.data.demo import demo_split  # noqa: E402
from mri_cyclegan.metrics import score, to_unit  # noqa: E402
from mri_cyclegan.inference import Translator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    args = ap.parse_args()
    tr = Translator.from_checkpoint(args.run, device="cpu")
    split = demo_split(tr.config.data)
    rows = []
    print(f"K={tr.context}: {'fusion':<8} {'direction':<9} {'PSNR':>7} {'SSIM':>7} {'3D PSNR':>8} {'3D SSIM':>8} {'tp ratio':>8}")
    for avg in (False, True):
        tr.average_context = avg
        for d, src, ref in (("t1_to_t2", split.t1, split.t2), ("t2_to_t1", split.t2, split.t1)):
            s = score(to_unit(tr.translate(src, d)), to_unit(ref.data), split.test_mask)
            row = {"fusion": "mean" if avg else "centre", "direction": d, "psnr": float(np.mean([r["psnr"] for r in s.slices])),
                   "ssim": float(np.mean([r["ssim"] for r in s.slices])), **s.volume}
            rows.append(row)
            print(f"     {row['fusion']:<8} {d:<9} {row['psnr']:>7.2f} {row['ssim']:>7.4f} {row['psnr_3d']:>8.2f} {row['ssim_3d']:>8.4f} {row['tp_ratio']:>8.3f}")
    print("wrote", write_json("context_fusion.json", {"machine": machine(), "run": args.run, "context_slices": tr.context, "rows": rows}))


if __name__ == "__main__":
    main()
