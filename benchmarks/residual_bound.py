"""How far may a translation move from the lookup table? Trained models scored with ``model.residual_bound`` set
after training (the bound applies where translations are made, not in training, so one trained model serves every
bound).

For each trained model, on data never trained on, PSNR and SSIM minus the lookup table's, worst per-tissue error,
lesion recovery, hallucinated lesions and outline error, for each bound (model units: the window is 2 wide; 0 =
unbounded, what training alone gives):

    CASE:RUN    a run folder of ``benchmarks/faithfulness.py`` (CASE = a..e), scored on the case's test subject
    demo:RUN    a demo run (``mri-cyclegan demo`` or ``benchmarks/demo_quality.py``), scored on the held-out slabs

    python benchmarks/residual_bound.py a:/tmp/faithfulness_x/a/run_now e:/tmp/faithfulness_y/e/run_now \\
        demo:/tmp/mri_cyclegan_demo_bench/run --bounds 0,0.1,0.2,0.3 --json residual_bound.json

Run alone (never two PyTorch processes at once on 2 cores).
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
from residual_signal import TableOnly  # noqa: E402

from mri_cyclegan.inference import Translator  # noqa: E402

KEYS = ("psnr", "ssim", "worst_tissue", "lesion_recovery", "hallucinated_pct", "boundary_err")


def bounded(run: Path, bound: float, cls: type[Translator] = Translator) -> Translator:
    """The run's last checkpoint with every generator's residual bound set to ``bound``."""
    tr = cls.from_checkpoint(run / "checkpoints" / "last.safetensors", device="cpu")
    for g in tr.model.generators():
        g.residual_bound = bound
    return tr


def score_case(case: str, run: Path, bounds: list[float]) -> dict:
    kind = fb.CASES[case]["kind"]
    s, vols, zs = fb.test_data(kind)
    out: dict = {}
    for direction, (a, b) in fb.DIRECTIONS.items():
        truth, source = fb.unit_slices(vols[b], zs), fb.unit_slices(vols[a], zs)
        table = fb.translate_test(bounded(run, 0.0, TableOnly), kind, s, vols, zs, direction)
        rows = {"table": fb.faithfulness_metrics(table, truth, source, s, zs, table)}
        for bound in bounds:
            pred = fb.translate_test(bounded(run, bound), kind, s, vols, zs, direction)
            rows[f"bound {bound:g}"] = fb.faithfulness_metrics(pred, truth, source, s, zs, table)
        for r in rows.values():
            r["worst_tissue"] = max(r["err_csf"], r["err_gm"], r["err_wm"])
        out[direction] = rows
    return out


def score_demo_run(run: Path, bounds: list[float]) -> dict:
    from mri_cyclegan.data.demo import demo_split
    from mri_cyclegan.demo import score_demo

    out: dict = {}
    split = None
    for bound in bounds:
        tr = bounded(run, bound)
        split = split or demo_split(tr.config.data)
        for r in score_demo(tr, split):
            rows = out.setdefault(r.direction, {"table": dict(r.summaries["inverse_histogram"])})
            rows[f"bound {bound:g}"] = dict(r.summaries["model"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="CASE:RUN_FOLDER (CASE = a..e or demo)")
    ap.add_argument("--bounds", default="0,0.1,0.2,0.3", help="comma list of residual bounds (model units; 0 = unbounded)")
    ap.add_argument("--json", default="residual_bound.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    bounds = [float(b) for b in args.bounds.split(",")]
    rows = []
    print(f"{'model':<6} {'seed':>4} {'direction':<9} {'setting':<10} {'dPSNR':>7} {'dSSIM':>7} {'tissue':>7} {'lesion':>7} {'halluc%':>7} {'outline':>7}")
    for spec in args.models:
        case, run = spec.split(":", 1)
        run = Path(run)
        seed = json.loads((run / "config.json").read_text())["train"]["seed"]
        scores = score_demo_run(run, bounds) if case == "demo" else score_case(case, run, bounds)
        rows.append({"case": case, "run": str(run), "seed": seed, **scores})
        for direction, r in scores.items():
            t = r["table"]
            for name, m in r.items():
                d = [m["psnr"] - t["psnr"], m["ssim"] - t["ssim"]] + [m.get(k, float("nan")) for k in KEYS[2:]]
                print(f"{case:<6} {seed:>4} {direction:<9} {name:<10} " + " ".join(f"{v:>+7.2f}" if i == 0 else f"{v:>7.3f}" for i, v in enumerate(d)), flush=True)
        write_json(args.json, {"machine": machine(), "bounds": bounds, "models": rows})
    for direction in fb.DIRECTIONS:
        for bound in bounds:
            gains = [r[direction][f"bound {bound:g}"]["psnr"] - r[direction]["table"]["psnr"] for r in rows if direction in r]
            print(f"{direction} bound {bound:g}: PSNR minus the table's: mean {np.mean(gains):+.2f}, worst {min(gains):+.2f} dB")
    print("wrote", write_json(args.json, {"machine": machine(), "bounds": bounds, "models": rows}))


if __name__ == "__main__":
    main()
