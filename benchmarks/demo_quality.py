"""Run the demo for a given wall-clock budget and print model vs baselines on the held-out slabs, at native
resolution (1 mm), in the brain mask: per-slice 2D, whole-slab 3D and through-plane scores.

    python benchmarks/demo_quality.py --minutes 10 [--context-slices 3] [--out /tmp/demo_bench]

Writes benchmarks/results/demo_quality_k{K}.json.
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


def views_figure(vol_dir: Path, path: Path) -> None:
    """Axial, coronal and sagittal cuts (rows) of real T1 | fake T2 | real T2 | fake T1 (columns), native 1 mm."""
    import nibabel as nib
    import numpy as np
    from PIL import Image, ImageDraw

    from mri_cyclegan.evaluate import orthogonal_views, view
    from mri_cyclegan.metrics import to_unit

    names = ("t1", "fake_t2", "t2", "fake_t1")
    vols = {n: to_unit(np.asarray(nib.load(vol_dir / f"{n}.nii.gz").dataobj, np.float32)) for n in names}
    mask = vols["t1"] > 0.02
    rows = []
    for _, idx in orthogonal_views(vols["t1"], mask):
        rows.append([np.clip(view(vols[n], idx), 0, 1) for n in names])
    h = max(t.shape[0] for r in rows for t in r)
    w = max(t.shape[1] for r in rows for t in r)
    out = np.zeros((16 + len(rows) * (h + 2), len(names) * (w + 2)), np.uint8)
    for r, row in enumerate(rows):
        for c, t in enumerate(row):
            out[16 + r * (h + 2) : 16 + r * (h + 2) + t.shape[0], c * (w + 2) : c * (w + 2) + t.shape[1]] = (t * 255).astype(np.uint8)
    img = Image.fromarray(out)
    draw = ImageDraw.Draw(img)
    for c, label in enumerate(("real T1", "fake T2 (from T1)", "real T2", "fake T1 (from T2)")):
        draw.text((c * (w + 2) + 3, 2), label, fill=255)
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--out", default="/tmp/mri_cyclegan_demo_bench")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--context-slices", type=int, default=1)
    ap.add_argument("--figure", help="also write the axial/coronal/sagittal figure here (e.g. docs/demo_views.png)")
    ap.add_argument("--objective", choices=("demo", "faithful"), default="demo",
                    help="demo: the demo's own settings; faithful: with train's faithful defaults (resize upsampling, anchor 1, structure 1)")
    ap.add_argument("--json", default="", help="result file name under benchmarks/results/ (default demo_quality_k<K>.json)")
    args = ap.parse_args()
    if args.objective == "faithful":
        from mri_cyclegan.config import Config
        from mri_cyclegan.demo import DEMO_OVERRIDES

        d = Config().to_dict()
        DEMO_OVERRIDES.update({"model.upsample": d["model"]["upsample"], "train.lambda_anchor": d["train"]["lambda_anchor"],
                               "train.lambda_structure": d["train"]["lambda_structure"]})
    logging.basicConfig(level=logging.INFO)
    t = time.perf_counter()
    m = run_demo(args.out, minutes=args.minutes, progress=False, seed=args.seed, context_slices=args.context_slices)
    wall = time.perf_counter() - t
    print(f"\ndemo, K={args.context_slices}, {args.minutes} min budget: {m['iterations']} iterations, train {m['train_seconds']:.0f} s, "
          f"total {wall:.0f} s, {m['n_test_slices']} test slices in 3 slabs; native 1 mm, brain mask")
    keys = ("psnr", "ssim", "mae", "psnr_3d", "ssim_3d", "tp_error", "tp_ratio")
    print(f"{'direction':<10} {'method':<18} " + " ".join(f"{k:>9}" for k in keys))
    for d in ("t1_to_t2", "t2_to_t1"):
        for meth in ("model", "inverse_histogram", "identity"):
            s = m[d][meth]
            print(f"{d:<10} {meth:<18} " + " ".join(f"{s[k]:>9.4f}" for k in keys))
        print(f"{d:<10} {'model - inv.hist':<18} " + " ".join(f"{m[d]['model'][k] - m[d]['inverse_histogram'][k]:>+9.4f}" for k in keys))
    out = {"machine": machine(), "minutes": args.minutes, "total_seconds": round(wall, 1),
           **{k: v for k, v in m.items() if k != "config"},
           "config": m["config"]}
    for d in ("t1_to_t2", "t2_to_t1"):
        out[d] = {k: v for k, v in m[d].items() if k != "per_image"}
    out["context_slices"] = args.context_slices
    if args.figure:
        views_figure(Path(args.out) / "volumes", Path(args.figure))
    out["objective"] = args.objective
    print("wrote", write_json(args.json or f"demo_quality_k{args.context_slices}.json", out))


if __name__ == "__main__":
    main()
