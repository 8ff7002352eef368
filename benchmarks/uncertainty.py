"""Uncertainty maps: which estimator points at the translation's errors, and at what cost?

Models (trained once, cached under ``--work``; delete the folder to retrain):

    demo   the demo's settings for ``--demo-minutes`` of wall clock; scored on the held-out slabs
    b/c/d  benchmarks/faithfulness.py's volume cases with train's defaults (lesions in both sets / only in the T1 set /
           only in the T2 set); scored on simulated subject 100 (12 lesions), never trained on

For each estimator (``mri_cyclegan.uncertainty.ESTIMATORS``) and direction: AUROC for finding the voxels whose
absolute error exceeds 0.1 (each image in its own 0.5/99.5 percentile window, [0, 1], in the brain mask), Spearman
rho between uncertainty and error, the lesion / surrounding white-matter uncertainty ratio (simulated cases), and
the translation time against plain translation (a 193 x 229 x 193 volume, threads as set by torch).

    python benchmarks/uncertainty.py --work /tmp/unc            # trains (about 20 min here), then scores
    python benchmarks/uncertainty.py --work /tmp/unc --train-only

Writes benchmarks/results/uncertainty.json. Run alone (never two PyTorch processes at once on 2 cores).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import machine, write_json  # noqa: E402
from faithfulness import CASES, DIRECTIONS, test_data, write_volume  # noqa: E402

from mri_cyclegan.metrics import ERROR_THRESHOLD  # noqa: E402  (a voxel one should not rely on: |error| > 0.1 of the window)

MNI_SHAPE = (193, 229, 193)  # the issue's timing volume: a whole 1 mm MNI grid


def checkpoint(work: Path, case: str, args) -> Path:
    """The cached model of ``case`` (trained on first use)."""
    ckpt = work / case / "run" / "checkpoints" / "last.safetensors"
    if ckpt.is_file():
        return ckpt
    import torch

    t0 = time.perf_counter()
    if case == "demo":
        from mri_cyclegan.demo import run_demo

        run_demo(work / case, minutes=args.demo_minutes, progress=False, seed=args.seed)
    else:
        from mri_cyclegan.config import Config
        from mri_cyclegan.data.dataset import load_domain, with_data_fingerprint
        from mri_cyclegan.training.trainer import Trainer

        spec = CASES[case]
        root = work / case
        for c in ("t1", "t2"):
            if not (root / c).exists():
                write_volume(root / c, spec[c], c, spec.get("coverage", {}).get(c))
        over = {"train.seed": args.seed, "train.save_every": 0, "train.n_samples": 2, "train.iters_per_epoch": args.volume_iters_per_epoch}
        cfg = with_data_fingerprint(Config().replace(**over), root / "t1", root / "t2")
        t1, t2 = load_domain(root / "t1", cfg.data, "T1"), load_domain(root / "t2", cfg.data, "T2")
        torch.manual_seed(args.seed)
        Trainer(cfg, t1, t2, root / "run").fit(progress=False)
    print(f"  trained {case} in {time.perf_counter() - t0:.0f} s", flush=True)
    return ckpt


# estimator -> members (the spread is over these members' predictions)
SUBSETS = {
    "flip": ("flip",), "shift": ("shift",), "gain": ("gain",), "offset": ("offset",), "edge": ("edge",), "prior": ("prior",),
    "cycle": ("cycle",), "flip+shift": ("flip", "shift"), "flip+gain": ("flip", "gain"), "flip+offset": ("flip", "offset"),
    "prior+edge": ("prior", "edge"), "prior+flip": ("prior", "flip"), "prior+shift": ("prior", "shift"),
    "prior+flip+edge": ("prior", "flip", "edge"), "prior+shift+edge": ("prior", "shift", "edge"),
    "prior+flip+offset": ("prior", "flip", "offset"), "prior+flip+shift+edge": ("prior", "flip", "shift", "edge"),
}
ALL = ("flip", "shift", "gain", "offset", "edge", "prior", "cycle")
EDGE_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)  # --edge-weights: the default members with the edge term weighted so


def test_volumes(case: str, cfg):
    """{contrast: Volume}, the scoring mask and, for simulated cases, the lesion core and its white-matter shell."""
    from scipy import ndimage

    from mri_cyclegan.io import Volume

    if case == "demo":
        from mri_cyclegan.data.demo import demo_split

        split = demo_split(cfg.data)
        return {"t1": split.t1, "t2": split.t2}, split.test_mask, None, None
    s, vols, _ = test_data("nifti")
    shell = ndimage.binary_dilation(s.lesion_core, iterations=3) & ~ndimage.binary_dilation(s.maps[3] > 0.05, iterations=1) & s.pure("wm")
    return {c: Volume(v, s.affine) for c, v in vols.items()}, s.brain, s.lesion_core, shell


def score_case(case: str, ckpt: Path, names: tuple[str, ...] = ALL, edge_weights: tuple[float, ...] = ()) -> dict:
    import torch
    from scipy import ndimage

    from mri_cyclegan.metrics import to_unit, unit_magnitude
    from mri_cyclegan.inference import Translator
    from mri_cyclegan.metrics import uncertainty_scores
    from mri_cyclegan.uncertainty import DEFAULT_MEMBERS, OUTPUTS, WEIGHTS, Member, member_weights, parse_members, spread

    tr = Translator.from_checkpoint(ckpt, device="cpu")
    vols, mask, core, shell = test_volumes(case, tr.config)
    out: dict[str, dict] = {}
    for direction, (a, b) in DIRECTIONS.items():
        stack, geom = tr.preprocessor.forward(vols[a])
        members = parse_members(names)
        t0 = time.perf_counter()
        pred, others = tr.translate_stacks_with_members([stack], direction, members)[0]
        seconds = time.perf_counter() - t0
        by_name, k = {}, 0
        for m in members:
            by_name[m.value], k = others[k : k + OUTPUTS[m]], k + OUTPUTS[m]
        pred_file = tr.preprocessor.inverse(pred, geom)
        ref = vols[b].data
        p_unit, r_unit = to_unit(pred_file), to_unit(ref)
        error = np.abs(p_unit - r_unit)
        row: dict[str, dict] = {"_": {"error_fraction": float((error[mask] > ERROR_THRESHOLD).mean()), "seconds_all_members": seconds}}
        runs = {name: (subset, member_weights(parse_members(subset))) for name, subset in SUBSETS.items() if set(subset) <= set(by_name)}
        default = tuple(m.value for m in DEFAULT_MEMBERS)
        for w in edge_weights:  # the default members with another weight on the edge term
            weights = [w if m is Member.EDGE else WEIGHTS.get(m, 1.0) for m in DEFAULT_MEMBERS for _ in range(OUTPUTS[m])]
            runs[f"default, edge weight {w:g}"] = (default, weights)
        for name, (subset, weights) in runs.items():
            ms = [m for k in subset for m in by_name[k]]
            u = spread(torch.from_numpy(pred), [torch.from_numpy(m) for m in ms], weights).numpy()
            u_file = unit_magnitude(tr.preprocessor.inverse_magnitude(u, geom), pred_file)  # evaluate --uncertainty's scale
            sc = uncertainty_scores(u_file, error, mask)
            r = {"auroc": sc["auroc"], "rho": sc["rho"], "reliability": sc["reliability"]["mean_error"]}
            if core is not None:
                r["lesion_ratio"] = float(u_file[core].mean() / max(u_file[shell].mean(), 1e-12))
                inner = ndimage.binary_erosion(core, iterations=1)  # the lesion minus its outer voxel layer
                r["lesion_interior_ratio"] = float(u_file[inner].mean() / max(u_file[shell].mean(), 1e-12)) if inner.any() else float("nan")
                r["lesion_error"] = float(error[core].mean())
            row[name] = r
        out[direction] = row
        print(f"  {case} {direction}: {row['_']['error_fraction'] * 100:.1f} % of voxels wrong by > {ERROR_THRESHOLD}; "
              + " ".join(f"{n} {row[n]['auroc']:.3f}" for n in runs), flush=True)
    return out


def timing(ckpt: Path, reps: int = 2) -> dict:
    """Plain translation vs translation with the default uncertainty of a 193 x 229 x 193 volume (the demo's T1 brain in
    the whole 1 mm MNI grid)."""
    from mri_cyclegan.data.demo import load_demo_volumes
    from mri_cyclegan.inference import Translator
    from mri_cyclegan.io import Volume
    from mri_cyclegan.uncertainty import DEFAULT_MEMBERS

    tr = Translator.from_checkpoint(ckpt, device="cpu")
    v = load_demo_volumes()
    data = np.zeros(MNI_SHAPE, np.float32)  # the demo brain (cropped) centred in the full 1 mm MNI grid
    off = [(a - b) // 2 for a, b in zip(MNI_SHAPE, v.t1.shape)]
    data[off[0] : off[0] + v.t1.shape[0], off[1] : off[1] + v.t1.shape[1], off[2] : off[2] + v.t1.shape[2]] = v.t1
    vol = Volume(data, v.affine)
    tr.translate(vol, "t1_to_t2")  # warm-up
    times = {"plain": [], "uncertainty": []}
    for _ in range(reps):
        t0 = time.perf_counter()
        tr.translate(vol, "t1_to_t2")
        times["plain"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tr.translate_with_uncertainty(vol, "t1_to_t2")
        times["uncertainty"].append(time.perf_counter() - t0)
    plain, unc = min(times["plain"]), min(times["uncertainty"])
    return {"shape": list(vol.data.shape), "members": [m.value for m in DEFAULT_MEMBERS], "plain_s": plain, "uncertainty_s": unc,
            "ratio": unc / plain, "model_space": list(tr.preprocessor.forward(vol)[0].shape), "ngf": tr.config.model.ngf}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/mri_cyclegan_uncertainty")
    ap.add_argument("--cases", default="demo,c,b,d")
    ap.add_argument("--demo-minutes", type=float, default=5.0)
    ap.add_argument("--volume-iters-per-epoch", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--members", default="", help="only these members (comma list; default all): fewer passes, fewer estimators")
    ap.add_argument("--edge-weights", default="", help="also score the default members with these weights on the edge term (e.g. 0,0.1,1)")
    ap.add_argument("--train-only", action="store_true")
    ap.add_argument("--timing-only", action="store_true", help="only re-measure the translation time (into the existing JSON)")
    ap.add_argument("--json", default="uncertainty.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = Path(args.work)
    cases = args.cases.split(",")
    for case in cases:
        checkpoint(work, case, args)
    if args.train_only:
        return
    if args.timing_only:  # add the timing to an existing result file
        import json

        results = json.loads((Path(__file__).parent / "results" / args.json).read_text())
        results["timing"] = {c: timing(checkpoint(work, c, args)) for c in ("c", "demo") if c in cases}
        results["timing_machine"] = machine()
        print_table(results)
        print("wrote", write_json(args.json, results))
        return
    results: dict = {"machine": machine(), "args": vars(args), "error_threshold": ERROR_THRESHOLD, "cases": {}}
    names = tuple(args.members.split(",")) if args.members else ALL
    edge_weights = tuple(float(w) for w in args.edge_weights.split(",")) if args.edge_weights else ()
    for case in cases:
        results["cases"][case] = score_case(case, checkpoint(work, case, args), names, edge_weights)
        write_json(args.json, results)
    results["timing"] = {c: timing(checkpoint(work, c, args)) for c in (["c"] if "c" in cases else cases[:1]) + (["demo"] if "demo" in cases else [])}
    write_json(args.json, results)
    print_table(results)
    print("wrote", write_json(args.json, results))


def print_table(results: dict) -> None:
    keys = ("auroc", "rho", "lesion_ratio", "lesion_interior_ratio")
    print(f"\n{'case':<5} {'direction':<9} {'estimator':<26} " + " ".join(f"{k:>12}" for k in keys))
    for case, res in results["cases"].items():
        for d, row in res.items():
            for name in [n for n in row if n != "_"]:
                r = row[name]
                print(f"{case:<5} {d:<9} {name:<26} " + " ".join(f"{r[k]:>12.3f}" if k in r else f"{'-':>12}" for k in keys))
    for case, t in results.get("timing", {}).items():
        print(f"timing ({case} model, ngf {t['ngf']}, {t['shape']} -> model space {t['model_space']}): plain {t['plain_s']:.2f} s, "
              f"with uncertainty ({'+'.join(t['members'])}) {t['uncertainty_s']:.2f} s = {t['ratio']:.2f}x")


if __name__ == "__main__":
    main()
