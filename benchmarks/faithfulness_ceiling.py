"""How much can any local translation add over the lookup table on a faithfulness case? A ceiling with *pairs*.

``benchmarks/demo_ceiling.py`` for the simulated cases of ``benchmarks/faithfulness.py``: every training subject of
the case is simulated in both contrasts, so its slices can be used paired, which no CycleGAN run can do. A per-voxel
MLP (``demo_ceiling.fit_predict``) learns the true target contrast from multi-scale in-plane features of the input and
of the lookup table's translation (``demo_ceiling.features``) on those subjects, and is scored on the case's test
subject (never trained on) with the faithfulness protocol (per-slice PSNR / SSIM in the brain mask), next to the
lookup table of a trained model of the case (its prior: the untrained model), and next to that table smoothed in-plane
(how much of the gain is only denoising, which a translation that looks like a real scan does not do).

An unpaired model with the same context sees less than this regressor, so a gain far above the regressor's is not to
be expected from it; it is not a strict bound (a deep network with pairs and a larger receptive field can do more).

    python benchmarks/faithfulness_ceiling.py a:/tmp/faithfulness_x/a/run_now [e:RUN ...] --json faithfulness_ceiling.json

About 3 minutes per case here (one thread). Run alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
import faithfulness as fb  # noqa: E402
from common import machine, write_json  # noqa: E402
from demo_ceiling import features, fit_predict  # noqa: E402
from residual_signal import TableOnly  # noqa: E402

TRAIN_SLICES = 40  # axial slices per training subject (evenly spaced over its brain)
SMOOTH = 0.5  # in-plane Gaussian sigma (voxels) of the denoising-only comparison: the table smoothed


def subject_data(seed: int, lesions: int, kind: str, n_slices: int | None):
    """(subject, volumes per contrast, slice indices or None) of one simulated subject, as ``faithfulness.test_data``."""
    s = fb.subject(seed, lesions)
    vols = {c: s.image(c) for c in ("t1", "t2")}
    zs = None
    if kind == "png" or n_slices:
        u = fb.usable_z(s)
        zs = u[np.linspace(0, len(u) - 1, min(n_slices or 15, len(u))).round().astype(int)]
    return s, vols, zs


def prepared(table_tr, kind: str, s, vols: dict, zs, direction: str):
    """[0, 1] source, lookup-table translation and truth as the faithfulness benchmark scores them (2D: each slice in
    its own window; volumes: the whole volume's window), on the slices ``zs`` (all when None)."""
    a, b = fb.DIRECTIONS[direction]
    if kind == "png":
        return fb.unit_slices(vols[a], zs), fb.translate_test(table_tr, kind, s, vols, zs, direction), fb.unit_slices(vols[b], zs)
    arrays = fb.unit_slices(vols[a], None), fb.translate_test(table_tr, kind, s, vols, None, direction), fb.unit_slices(vols[b], None)
    return tuple(x if zs is None else x[:, :, zs] for x in arrays)


def near(s, zs) -> np.ndarray:
    from scipy import ndimage

    b = ndimage.binary_dilation(s.brain, iterations=2)
    return b if zs is None else b[:, :, zs]


def main() -> None:
    import torch
    from scipy import ndimage

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="CASE:RUN_FOLDER (its lookup table is the baseline and a feature)")
    ap.add_argument("--iterations", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="faithfulness_ceiling.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out: dict = {"machine": machine(), "args": vars(args), "results": {}}
    print(f"{'case':<4} {'direction':<10} {'method':<24} {'psnr':>7} {'ssim':>7}")
    for spec in args.models:
        case, run = spec.split(":", 1)
        kind = fb.CASES[case]["kind"]
        table_tr = TableOnly.from_checkpoint(Path(run) / "checkpoints" / "last.safetensors", device="cpu")
        subjects = sorted(set(fb.CASES[case]["t1"]) | set(fb.CASES[case]["t2"]))
        s_test, vols_test, zs_test = fb.test_data(kind)
        res = out["results"][case] = {"run": run, "training_subjects": subjects}
        for direction in fb.DIRECTIONS:
            t0 = time.perf_counter()
            feats, targets = [], []
            for seed, les in subjects:  # paired training voxels: both contrasts of each training subject
                s, vols, zs = subject_data(seed, les, kind, TRAIN_SLICES)
                src, table, truth = prepared(table_tr, kind, s, vols, zs, direction)
                m = near(s, zs)
                feats.append(features(src, table)[m])
                targets.append(truth[m])
            f_train, y_train = np.concatenate(feats), np.concatenate(targets)
            src, table, truth = prepared(table_tr, kind, s_test, vols_test, zs_test, direction)
            m = near(s_test, zs_test)
            f_test = features(src, table)
            pred = table.copy()
            both = np.concatenate([f_train, f_test[m]])
            ys = np.concatenate([y_train, np.zeros(int(m.sum()), np.float32)])
            train = np.zeros(len(both), bool)
            train[: len(f_train)] = True
            pred[m] = fit_predict(both, ys, train, ~train, args.iterations, args.seed)
            pred = np.clip(pred, 0, 1)
            smoothed = ndimage.gaussian_filter(table, (SMOOTH, SMOOTH, 0))  # how much of the gain is only denoising
            scores = {"lookup table": fb.faithfulness_metrics(table, truth, src, s_test, zs_test, table),
                      f"table smoothed {SMOOTH} px": fb.faithfulness_metrics(smoothed, truth, src, s_test, zs_test, table),
                      "paired local regressor": fb.faithfulness_metrics(pred, truth, src, s_test, zs_test, table)}
            res[direction] = {k: {"psnr": v["psnr"], "ssim": v["ssim"], "boundary_err": v["boundary_err"],
                                  "lesion_recovery": v.get("lesion_recovery")} for k, v in scores.items()}
            gain = {k: scores["paired local regressor"][k] - scores["lookup table"][k] for k in ("psnr", "ssim")}
            res[direction]["gain"] = gain
            res[direction]["training_voxels"] = int(len(f_train))
            res[direction]["seconds"] = round(time.perf_counter() - t0, 1)
            for k, v in scores.items():
                print(f"{case:<4} {direction:<10} {k:<24} {v['psnr']:>7.2f} {v['ssim']:>7.3f}")
            print(f"{case:<4} {direction:<10} {'gain over the table':<24} {gain['psnr']:>+7.2f} {gain['ssim']:>+7.3f}", flush=True)
            write_json(args.json, out)
    print("wrote", write_json(args.json, out))


if __name__ == "__main__":
    main()
