"""Identity loss with the histogram prior: the default (0) against the reference's 0.5, on the demo's held-out slabs.

Each setting trains the demo configuration for --minutes of wall-clock time (same seed, same data), then both
directions are scored like the demo (native 1 mm, brain mask of the held-out slabs).

    python benchmarks/identity_default.py --minutes 5

Writes benchmarks/results/identity_default.json. Run alone.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--values", type=float, nargs="+", default=[0.0, 0.5])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from mri_cyclegan.data.demo import demo_split
    from mri_cyclegan.demo import demo_config, score_demo
    from mri_cyclegan.inference import Translator
    from mri_cyclegan.training.trainer import Trainer

    rows = {}
    for lam in args.values:
        cfg = demo_config(args.minutes, device="cpu").replace(**{"train.lambda_identity": lam})
        split = demo_split(cfg.data)
        trainer = Trainer(cfg, split.t1_train, split.t2_train, Path(tempfile.mkdtemp(prefix="identity_")))
        t0 = time.perf_counter()
        trainer.fit(progress=False)
        seconds = time.perf_counter() - t0
        results = score_demo(Translator(trainer.model, cfg, device="cpu"), split)
        rows[str(lam)] = {"iterations": trainer.step, "seconds": round(seconds, 1),
                          **{r.direction: {k: r.summaries["model"][k] for k in ("psnr", "ssim", "mae")} for r in results}}
        for r in results:
            rows[str(lam)][r.direction]["baseline_psnr"] = r.summaries["inverse_histogram"]["psnr"]
            rows[str(lam)][r.direction]["baseline_ssim"] = r.summaries["inverse_histogram"]["ssim"]

    print(f"\ndemo held-out slabs, {args.minutes:g} min of training each (per-slice means)")
    print(f"{'lambda_identity':>15} {'iters':>6} {'T1→T2 PSNR':>11} {'SSIM':>7} {'T2→T1 PSNR':>11} {'SSIM':>7}")
    for lam, r in rows.items():
        print(f"{lam:>15} {r['iterations']:>6} {r['t1_to_t2']['psnr']:>11.2f} {r['t1_to_t2']['ssim']:>7.4f} "
              f"{r['t2_to_t1']['psnr']:>11.2f} {r['t2_to_t1']['ssim']:>7.4f}")
    print(f"wrote {write_json('identity_default.json', {'machine': machine(), 'minutes': args.minutes, 'results': rows})}")


if __name__ == "__main__":
    main()
