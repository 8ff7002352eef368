"""What does training add to the lookup table: correction or texture? Scored on trained faithfulness models.

For each trained model (a run folder of ``benchmarks/faithfulness.py``, named with its case), on the case's test subject
(never trained on), per-slice PSNR and SSIM minus the lookup table's for:

    model        the translation as ``translate`` makes it
    flip         the mean of the translation and that of the mirrored slices, mirrored back (test-time averaging)
    flip4        the mean over both in-plane mirrorings and their product (4 generator passes)
    shrink A     table + A * (model - table): the learned residual scaled by A (0.25, 0.5, 0.75)

A residual that is correction gains in proportion to A; one that is texture uncorrelated with the truth costs ~A^2 and
shrinking it gains. Averaging over mirrorings removes what is not mirror-equivariant (texture) and keeps corrections.

    python benchmarks/faithfulness.py --cases a,e --seed 1        # leaves run folders under /tmp/faithfulness_*/CASE/run_*
    python benchmarks/residual_signal.py a:/tmp/faithfulness_x/a/run_now e:/tmp/faithfulness_y/e/run_now --json residual_signal.json

Run alone (never two PyTorch processes at once on 2 cores); about 4 minutes per model here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
import faithfulness as fb  # noqa: E402
from common import machine, write_json  # noqa: E402

from mri_cyclegan.inference import Translator  # noqa: E402

SHRINK = (0.25, 0.5, 0.75)


class Mirrored(Translator):
    """The generator's mean over in-plane mirrorings of each slice (``axes``: tuples of dims to flip)."""

    axes: tuple[tuple[int, ...], ...] = ((), (-1,))

    def _whole(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        outs = [super(Mirrored, self)._whole(x.flip(a) if a else x, direction) for a in self.axes]
        return torch.stack([o.flip(a) if a else o for o, a in zip(outs, self.axes)]).mean(0)


class Mirrored4(Mirrored):
    axes = ((), (-1,), (-2,), (-1, -2))


class TableOnly(Translator):
    """The untrained model: every translation is the checkpoint's lookup table alone (:meth:`Translator.table_translation`)."""

    def translate(self, volume, direction: str) -> np.ndarray:
        return self.table_translation(volume, direction)


def score_model(case: str, run: Path) -> dict:
    kind = fb.CASES[case]["kind"]
    s, vols, zs = fb.test_data(kind)
    truth = {c: fb.unit_slices(vols[c], zs) for c in ("t1", "t2")}
    ckpt = run / "checkpoints" / "last.safetensors"
    seed = json.loads((run / "config.json").read_text())["train"]["seed"]
    out: dict = {"case": case, "run": str(run), "seed": seed}
    for direction, (a, b) in fb.DIRECTIONS.items():
        preds = {name: fb.translate_test(cls.from_checkpoint(ckpt, device="cpu"), kind, s, vols, zs, direction)
                 for name, cls in (("table", TableOnly), ("model", Translator), ("flip", Mirrored), ("flip4", Mirrored4))}
        table = preds["table"]
        for al in SHRINK:
            preds[f"shrink {al}"] = table + al * (preds["model"] - table)
        ref = fb.faithfulness_metrics(table, truth[b], truth[a], s, zs, table)
        out[direction] = {"table": {"psnr": ref["psnr"], "ssim": ref["ssim"]}}
        for name, p in preds.items():
            if name == "table":
                continue
            m = fb.faithfulness_metrics(p, truth[b], truth[a], s, zs, table)
            out[direction][name] = {"psnr_minus_table": m["psnr"] - ref["psnr"], "ssim_minus_table": m["ssim"] - ref["ssim"],
                                    "lesion_recovery": m.get("lesion_recovery", float("nan"))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="CASE:RUN_FOLDER, e.g. a:/tmp/faithfulness_x/a/run_now")
    ap.add_argument("--json", default="residual_signal.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    names = ("model", "flip", "flip4", *(f"shrink {a}" for a in SHRINK))
    print(f"{'case':<4} {'seed':>4} {'direction':<9} " + " ".join(f"{n:>11}" for n in names) + "   (PSNR minus the table's, dB)")
    for spec in args.models:
        case, run = spec.split(":", 1)
        r = score_model(case, Path(run))
        rows.append(r)
        for d in fb.DIRECTIONS:
            print(f"{case:<4} {r['seed']:>4} {d:<9} " + " ".join(f"{r[d][n]['psnr_minus_table']:>+11.2f}" for n in names), flush=True)
        write_json(args.json, {"machine": machine(), "models": rows})
    for d in fb.DIRECTIONS:
        print(f"mean {d}: " + " ".join(f"{n} {np.mean([r[d][n]['psnr_minus_table'] for r in rows]):+.2f}" for n in names))
    print("wrote", write_json(args.json, {"machine": machine(), "models": rows}))


if __name__ == "__main__":
    main()
