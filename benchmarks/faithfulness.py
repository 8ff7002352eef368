"""Faithfulness: does training add to the lookup table (the prior) or take away from it, on data unlike the demo?

Simulated subjects (tests/brainsim.py: the demo brain's tissue maps, randomly deformed, extracerebral CSF, BrainWeb
1.5 T spin-echo physics, bias field, Rician noise, MS-like white-matter lesions in some subjects), generated on the
fly. Cases (training sets are unpaired, from different subjects; every score is on subject 100, never trained on):

    a  Kaggle-style folders: 43 T1 / 46 T2 8-bit RGB PNGs 181x217 (two subjects each, one with lesions);
       scored on 15 16-bit PNG pairs of subject 100
    b  a patient's T1 volume against another patient's T2 volume (lesions in both sets, other places)
    c  a patient's T1 against a healthy control's T2 (lesions only in the T1 set)
    d  a control's T1 against a patient's T2 (lesions only in the T2 set)
    e  different coverage: T1 volume of the inferior 60 % of a brain, T2 of the superior 60 % of another

Methods: the lookup table (the untrained model), and each trained configuration (``--methods``). Per direction:
PSNR/SSIM per slice (2D) and 3D, each image in its own 0.5/99.5 percentile window, in the brain mask (brain and
the CSF around it); per-tissue |mean error| (pure voxels); lesion contrast recovery ((lesion - surrounding WM) in
the output / the same in the truth); hallucinated lesions (% of healthy WM, far from any lesion, pushed past half
way to lesion brightness); boundary error (mean |error| in the 3-voxel rim inside the brain outline); checkerboard
(power at the Nyquist frequency of axial slices against the band below it: output over input, the issue's
measure; output over the true target image; output over the lookup table's translation, which is pointwise and so
cannot make a checkerboard: what the network added).

    python benchmarks/faithfulness.py                       # all cases, methods before,now (about 30 min here)
    python benchmarks/faithfulness.py --cases a --methods before,now,anchor_only

Writes benchmarks/results/faithfulness.json. Run alone (never two PyTorch processes at once on 2 cores).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from common import machine, write_json  # noqa: E402

from tests.brainsim import Subject, simulate_subject  # noqa: E402

DIRECTIONS = {"t1_to_t2": ("t1", "t2"), "t2_to_t1": ("t2", "t1")}
TEST_SEED = 100
# trained configurations: overrides of the defaults (the lookup table is always scored)
METHODS = {
    "before": {"model.upsample": "transpose", "train.lambda_anchor": 0.0, "train.lambda_structure": 0.0},  # defaults until this change
    "now": {},  # today's defaults
    "anchor_only": {"train.lambda_structure": 0.0},
    "structure_only": {"train.lambda_anchor": 0.0},
    "resize_only": {"train.lambda_anchor": 0.0, "train.lambda_structure": 0.0},
    "anchor_sigma4": {"train.anchor_sigma": 4.0},
    "anchor_10": {"train.lambda_anchor": 10.0},
    "anchor_sigma1": {"train.anchor_sigma": 1.0},  # the low-pass anchor also holds texture 1-2 px across (the GAN's)
    # the pixel-wise rim anchor: weight, depth, and whether it also runs along each patch's edge (today: 30, 3, yes)
    "rim_10": {"train.anchor_rim": 10.0, "train.anchor_rim_border": False},  # the default before this one
    "rim_3": {"train.anchor_rim": 3.0, "train.anchor_rim_border": False},
    "rim_1": {"train.anchor_rim": 1.0, "train.anchor_rim_border": False},
    "rim_30": {"train.anchor_rim": 30.0, "train.anchor_rim_border": False},
    "rim_w8": {"train.anchor_rim_width": 8, "train.anchor_rim": 10.0, "train.anchor_rim_border": False},  # 8 px deep: the CSF around the brain and the cortex
    "rim_w8_30": {"train.anchor_rim_width": 8, "train.anchor_rim": 30.0, "train.anchor_rim_border": False},
    "rim_w8_nostruct": {"train.anchor_rim_width": 8, "train.anchor_rim": 10.0, "train.anchor_rim_border": False, "train.lambda_structure": 0.0},
    "rim_border": {"train.anchor_rim": 10.0, "train.anchor_rim_border": True},  # the rim also along each patch's edge
    "rim_30_border": {"train.anchor_rim": 30.0, "train.anchor_rim_border": True},  # today's default
    "ema": {"train.ema_decay": 0.99},  # samples, safety net and checkpoint: the running average of the generators' weights
    # with --paired N: the pairs supervise the boundary, so the rim anchor (there because the unpaired loss got it wrong) may go
    "rim_off": {"train.anchor_rim": 0.0},
    "paired_30": {"train.lambda_paired": 30.0},  # the pairs' L1 at three times the cycle loss's weight
    "paired_heavy": {"train.paired_batch": 4, "train.lambda_paired": 30.0},  # four paired patches per batch, their L1 at 30
    # pairs as a supervised fit: eight paired patches per batch at weight 300, nothing else held (no cycle, anchor, rim
    # or structure); the unpaired patches' adversarial term (weight 1) is all that is left of the CycleGAN
    "paired_sup": {"train.paired_batch": 8, "train.lambda_paired": 300.0, "train.lambda_cycle": 0.0, "train.anchor_rim": 0.0,
                   "train.lambda_anchor": 0.0, "train.lambda_structure": 0.0},
    "paired_free": {"train.anchor_rim": 0.0, "train.lambda_anchor": 0.0, "train.lambda_structure": 0.0},  # pairs, no term holding the table
    "balanced_d": {"train.balance_d": True},
    "patchnce": {"train.lambda_nce": 1.0, "train.lambda_cycle": 0.0},  # CUT's objective in place of the cycle (anchor, rim, structure kept)
    "patchnce_cycle": {"train.lambda_nce": 1.0},  # PatchNCE added to the cycle  # the adversarial losses weigh each tissue class equally
    "pointwise": {"model.outline": "table"},  # the prior without outline unmixing (the default before it)
    "pointwise table": {"model.outline": "table"},  # untrained: the lookup table without outline unmixing
    # N4 bias-field correction of every volume, in training and translation (volume cases only)
    "n4": {"data.n4": True},
    "n4 table": {"data.n4": True},  # untrained: the lookup table of N4-corrected volumes
}
UNTRAINED = {"lookup table", "pointwise table", "n4 table"}  # scored as the untrained model (the prior itself)
# case: T1 subjects (seed, lesions), T2 subjects, kind, coverage (fraction range of axial slices per contrast)
CASES = {
    "a": {"t1": [(1, 10), (2, 0)], "t2": [(3, 10), (4, 0)], "kind": "png"},
    "b": {"t1": [(1, 10)], "t2": [(3, 10)], "kind": "nifti"},
    "c": {"t1": [(1, 10)], "t2": [(4, 0)], "kind": "nifti"},
    "d": {"t1": [(2, 0)], "t2": [(3, 10)], "kind": "nifti"},
    "e": {"t1": [(2, 0)], "t2": [(4, 0)], "kind": "nifti", "coverage": {"t1": (0.0, 0.6), "t2": (0.4, 1.0)}},
}
CASE_NAMES = {"a": "Kaggle-style PNG folders", "b": "lesions in both sets", "c": "lesions only in T1 set", "d": "lesions only in T2 set",
              "e": "different coverage"}

_SUBJECTS: dict[tuple[int, int], Subject] = {}


def subject(seed: int, lesions: int) -> Subject:
    if (seed, lesions) not in _SUBJECTS:
        _SUBJECTS[(seed, lesions)] = simulate_subject(seed, lesions=lesions)
    return _SUBJECTS[(seed, lesions)]


def usable_z(s: Subject, min_fraction: float = 0.3) -> np.ndarray:
    frac = s.brain.mean((0, 1))
    return np.flatnonzero(frac >= min_fraction * frac.max())


def axial_image(vol: np.ndarray, z: int, shape=(217, 181)) -> np.ndarray:
    """Axial slice z as a displayed image (anterior up), padded to the Kaggle sets' 217 x 181 (MNI 1 mm grid)."""
    img = np.rot90(vol[:, :, z])
    out = np.zeros(shape, np.float32)
    oy, ox = (shape[0] - img.shape[0]) // 2, (shape[1] - img.shape[1]) // 2
    out[oy : oy + img.shape[0], ox : ox + img.shape[1]] = img
    return out


def write_pngs(folder: Path, subjects: list[tuple[int, int]], contrast: str, n: int, rng) -> None:
    """n 8-bit RGB PNG slices (each scaled by its own maximum, as exported sets are) from the subjects."""
    from PIL import Image

    folder.mkdir(parents=True)
    per = [n // len(subjects) + (i < n % len(subjects)) for i in range(len(subjects))]
    for (seed, les), k in zip(subjects, per):
        s = subject(seed, les)
        vol = s.image(contrast)
        for z in sorted(rng.choice(usable_z(s), k, replace=False)):
            img = axial_image(vol, int(z))
            u8 = np.clip(img / np.percentile(img, 99.9) * 255, 0, 255).astype(np.uint8)
            Image.fromarray(np.stack([u8] * 3, -1)).save(folder / f"s{seed}_z{z:03d}.png")


PAIRED_SUBJECTS = [(5, 10), (6, 0), (7, 10), (8, 0)]  # --paired N: the first N, simulated in both contrasts (never tested on)


def write_pairs(root: Path, n_subjects: int, kind: str, rng) -> None:
    """``--paired N``: co-registered T1/T2 of N further subjects under root/pairs/{t1,t2}, named alike: PNG slices (the
    same slices in both contrasts, each scaled by its own maximum) or one NIfTI volume per subject and contrast."""
    subjects = PAIRED_SUBJECTS[:n_subjects]
    if kind != "png":
        for c in ("t1", "t2"):
            write_volume(root / "pairs" / c, subjects, c, None)
        return
    from PIL import Image

    for c in ("t1", "t2"):
        (root / "pairs" / c).mkdir(parents=True)
    for seed, les in subjects:
        s = subject(seed, les)
        for z in sorted(rng.choice(usable_z(s), 20, replace=False)):
            for c in ("t1", "t2"):
                img = axial_image(s.image(c), int(z))
                u8 = np.clip(img / np.percentile(img, 99.9) * 255, 0, 255).astype(np.uint8)
                Image.fromarray(np.stack([u8] * 3, -1)).save(root / "pairs" / c / f"s{seed}_z{z:03d}.png")


def write_volume(path: Path, subjects: list[tuple[int, int]], contrast: str, coverage: tuple[float, float] | None) -> None:
    import nibabel as nib

    path.mkdir(parents=True)
    for seed, les in subjects:
        s = subject(seed, les)
        vol = s.image(contrast)
        if coverage:
            z = usable_z(s, 0.05)
            lo, hi = z[0] + int(coverage[0] * (z[-1] - z[0])), z[0] + int(coverage[1] * (z[-1] - z[0]))
            vol = vol.copy()
            vol[:, :, :lo] = 0
            vol[:, :, hi + 1 :] = 0
        nib.save(nib.Nifti1Image(vol, s.affine), path / f"s{seed}_{contrast}.nii.gz")


# ---------------------------------------------------------------------------------------------- metrics
def nyquist_peak(img: np.ndarray, mask: np.ndarray) -> float:
    """Checkerboard measure: mean power on the Nyquist row and column of the brain's bounding box over the mean power
    of the band just below it (0.75-0.95 Nyquist). Noise and anatomy fall off smoothly there (<= ~1); a checkerboard
    from uneven upsampling is a peak at Nyquist (> 1)."""
    idx = np.argwhere(mask)
    if len(idx) < 16:
        return float("nan")
    (y0, x0), (y1, x1) = idx.min(0), idx.max(0) + 1
    a = img[y0:y1, x0:x1]
    a = a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2]
    p = np.abs(np.fft.fft2(a - a.mean())) ** 2
    out = []
    for q in (p, p.T):
        n = q.shape[0] // 2
        band = [k for k in range(int(0.75 * n), int(0.95 * n) + 1) if 0 < k < n]
        out.append(q[n].mean() / max(np.mean([q[k].mean() + q[-k].mean() for k in band]) / 2, 1e-12))
    return float(np.mean(out))


def faithfulness_metrics(pred: np.ndarray, truth: np.ndarray, source: np.ndarray, s: Subject, zs: np.ndarray | None,
                         table: np.ndarray | None = None) -> dict[str, float]:
    """pred/truth/source: [0, 1] volumes (X, Y, Z) of subject s, or only the axial slices ``zs`` (2D case: (X, Y, len(zs))).
    table: the lookup table's translation of the same source (for the checkerboard against the table)."""
    from scipy import ndimage

    from mri_cyclegan.metrics import score

    sel = (lambda m: m[:, :, zs]) if zs is not None else (lambda m: m)
    brain = sel(s.brain)
    out: dict[str, float] = {}
    scored = score(pred, truth, brain, axis=2)
    out["psnr"] = float(np.mean([r["psnr"] for r in scored.slices]))
    out["ssim"] = float(np.mean([r["ssim"] for r in scored.slices]))
    if zs is None:
        out["psnr_3d"], out["ssim_3d"] = scored.volume["psnr_3d"], scored.volume["ssim_3d"]
    for t in ("csf", "gm", "wm"):
        m = sel(s.pure(t))
        out[f"err_{t}"] = abs(float(pred[m].mean() - truth[m].mean()))
    core = sel(s.lesion_core)
    any_lesion = sel(ndimage.binary_dilation(s.maps[3] > 0.05, iterations=4))
    wm = sel(s.pure("wm"))
    if core.sum() > 20:
        shell = sel(ndimage.binary_dilation(s.lesion_core, iterations=3) & ~ndimage.binary_dilation(s.maps[3] > 0.05, iterations=1)) & wm
        out["lesion_recovery"] = float((pred[core].mean() - pred[shell].mean()) / (truth[core].mean() - truth[shell].mean()))
        healthy = wm & ~any_lesion
        wm_t, les_t = truth[healthy].mean(), truth[core].mean()
        thr = wm_t + 0.5 * (les_t - wm_t)
        past = pred[healthy] > thr if les_t > wm_t else pred[healthy] < thr
        out["hallucinated_pct"] = 100 * float(past.mean())
    rim = np.stack([b & ~ndimage.binary_erosion(b, iterations=3) for b in np.moveaxis(brain, 2, 0)], 2)
    out["boundary_err"] = float(np.abs(pred - truth)[rim].mean())
    # Checkerboard: the output's Nyquist peak over the input's (the issue's measure). A pointwise map cannot make a
    # checkerboard, yet changes this ratio (a contrast change alters how much of the near-Nyquist band is noise
    # rather than anatomy: the lookup table scores 1.1-1.2), so the peak is also given against the true image of the
    # target contrast and against the lookup table's translation (what the network added to the prior).
    ks = [k for k in range(brain.shape[2]) if brain[:, :, k].sum() > 500]
    peak = {k: nyquist_peak(pred[:, :, k], brain[:, :, k]) for k in ks}
    out["nyquist_ratio"] = float(np.nanmean([peak[k] / nyquist_peak(source[:, :, k], brain[:, :, k]) for k in ks]))
    out["nyquist_vs_truth"] = float(np.nanmean([peak[k] / nyquist_peak(truth[:, :, k], brain[:, :, k]) for k in ks]))
    if table is not None:
        out["nyquist_vs_table"] = float(np.nanmean([peak[k] / nyquist_peak(table[:, :, k], brain[:, :, k]) for k in ks]))
    return out


# ---------------------------------------------------------------------------------------------- runs
@functools.lru_cache(maxsize=None)
def test_data(kind: str):
    """Subject 100 (12 lesions): source and truth volumes per contrast, and for PNG cases 15 axial slice indices.
    Simulated once per kind and process (callers copy before they change anything)."""
    s = subject(TEST_SEED, 12)
    vols = {c: s.image(c) for c in ("t1", "t2")}
    zs = None
    if kind == "png":
        u = usable_z(s)
        zs = u[np.linspace(0, len(u) - 1, 15).round().astype(int)]
    return s, vols, zs


def translate_test(translator, kind: str, s: Subject, vols: dict, zs, direction: str) -> np.ndarray:
    """The translation of subject 100's source contrast as a [0, 1] (X, Y, Z) volume (or (X, Y, 15) slices)."""
    from mri_cyclegan.metrics import to_unit
    from mri_cyclegan.io import Volume

    src = vols[DIRECTIONS[direction][0]]
    if kind == "png":  # 16-bit PNG-like: the raw slice at the Kaggle grid, translated as a 2D image, cut back
        outs = []
        for z in zs:
            img = np.round(axial_image(src, int(z)) / src.max() * 60000)
            pred = translator.translate_image(img, direction)
            w, h = s.maps.shape[1], s.maps.shape[2]  # (X, Y) of the volume: the image is (Y, X)
            oy, ox = (217 - h) // 2, (181 - w) // 2
            outs.append(to_unit(np.rot90(pred[oy : oy + h, ox : ox + w], -1)))
        return np.stack(outs, 2)
    return to_unit(translator.translate(Volume(src, s.affine), direction))


def unit_slices(vol: np.ndarray, zs) -> np.ndarray:
    from mri_cyclegan.metrics import to_unit

    if zs is None:
        return to_unit(vol)
    return np.stack([to_unit(vol[:, :, int(z)]) for z in zs], 2)


def run_case(case: str, methods: list[str], work: Path, args) -> dict:
    import torch

    from mri_cyclegan.config import Config
    from mri_cyclegan.data.dataset import load_domain, load_pairs, paired_files, with_data_fingerprint
    from mri_cyclegan.inference import Translator
    from mri_cyclegan.checkpoints import load_checkpoint
    from mri_cyclegan.training.trainer import Trainer

    spec = CASES[case]
    root = work / case
    rng = np.random.default_rng(ord(case))
    if spec["kind"] == "png":
        write_pngs(root / "t1", spec["t1"], "t1", 43, rng)
        write_pngs(root / "t2", spec["t2"], "t2", 46, rng)
    else:
        cov = spec.get("coverage", {})
        write_volume(root / "t1", spec["t1"], "t1", cov.get("t1"))
        write_volume(root / "t2", spec["t2"], "t2", cov.get("t2"))
    if args.paired:
        write_pairs(root, args.paired, spec["kind"], rng)
    s, vols, zs = test_data(spec["kind"])
    truth = {c: unit_slices(vols[c], zs) for c in ("t1", "t2")}
    results: dict[str, dict] = {}
    table: dict[str, np.ndarray] = {}  # the lookup table's translations, per direction
    for method in ["lookup table", *methods]:
        over = dict(METHODS.get(method, {}))
        over.update({"train.seed": args.seed, "train.save_every": 0, "train.n_samples": 2, "train.precision": args.precision})
        if spec["kind"] != "png":  # volumes: the Kaggle case's number of iterations (the default would be ~3x as many)
            over["train.iters_per_epoch"] = args.volume_iters_per_epoch
        cfg = with_data_fingerprint(Config().replace(**over), root / "t1", root / "t2")
        t1, t2 = load_domain(root / "t1", cfg.data, "T1"), load_domain(root / "t2", cfg.data, "T2")
        pairs = load_pairs(paired_files(root / "pairs" / "t1", root / "pairs" / "t2"), cfg.data) if args.paired and method not in UNTRAINED else None
        torch.manual_seed(args.seed)
        trainer = Trainer(cfg, t1, t2, root / f"run_{method.replace(' ', '_')}", pairs=pairs)
        t0 = time.perf_counter()
        if method not in UNTRAINED:
            trainer.fit(progress=False)
        seconds = time.perf_counter() - t0
        translator = Translator(trainer.model.cpu(), cfg, device="cpu", precision="fp32")
        results[method] = {"seconds": seconds, "iterations": trainer.step, "precision": trainer.precision}
        for direction, (a, b) in DIRECTIONS.items():
            pred = translate_test(translator, spec["kind"], s, vols, zs, direction)
            table.setdefault(direction, pred)  # the first method is the lookup table
            results[method][direction] = faithfulness_metrics(pred, truth[b], truth[a], s, zs, table[direction])
            if args.pictures:
                save_picture(Path(args.pictures) / f"faith_{case}_{method.replace(' ', '_')}_{direction}.png", truth[a], pred, truth[b], zs)
        if trainer.drifts:
            from mri_cyclegan.faithfulness import verdict

            results[method]["drift"] = {d: {**v.tissue, "boundary": v.boundary} for d, v in trainer.drifts.items()}
            results[method]["verdict"] = verdict(trainer.drifts, trainer.n_pairs, cfg.model.residual_bound)[1]
        print(f"  case {case} {method}: {results[method]['iterations']} it in {seconds:.0f} s "
              + " ".join(f"{d}: {results[method][d]['psnr']:.2f} dB" for d in DIRECTIONS), flush=True)
        best = trainer.run_dir / "checkpoints" / "best.safetensors"
        if method not in UNTRAINED and best.is_file():  # what the safety net keeps (the verdict points at it)
            tr_best = Translator.from_checkpoint(best, device="cpu")
            epoch = int(load_checkpoint(best)[1]["epoch"])
            key = f"{method} (best: epoch {epoch})"
            results[key] = {"epoch": epoch}
            for direction, (a, b) in DIRECTIONS.items():
                pred = translate_test(tr_best, spec["kind"], s, vols, zs, direction)
                results[key][direction] = faithfulness_metrics(pred, truth[b], truth[a], s, zs, table[direction])
            print(f"  case {case} {key}: " + " ".join(f"{d}: {results[key][d]['psnr']:.2f} dB" for d in DIRECTIONS), flush=True)
    return results


def save_picture(path: Path, src: np.ndarray, pred: np.ndarray, truth: np.ndarray, zs) -> None:
    from PIL import Image

    k = src.shape[2] // 2 if zs is not None else int(np.argmax((truth > 0.05).sum((0, 1))))
    tiles = [np.rot90(a[:, :, k]) for a in (src, pred, truth, np.abs(pred - truth))]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(np.concatenate(tiles, 1), 0, 1) * 255).astype(np.uint8)).save(path)


KEYS = ("psnr", "ssim", "psnr_3d", "ssim_3d", "err_csf", "err_gm", "err_wm", "lesion_recovery", "hallucinated_pct", "boundary_err", "nyquist_ratio",
        "nyquist_vs_truth", "nyquist_vs_table")


def print_table(all_results: dict) -> None:
    print(f"\n{'case':<4} {'method':<26} {'direction':<9} " + " ".join(f"{k[:11]:>11}" for k in KEYS))
    for case, res in all_results.items():
        for method, r in res.items():
            for d in DIRECTIONS:
                row = r[d]
                print(f"{case:<4} {method:<26} {d:<9} " + " ".join(f"{row[k]:>11.3f}" if k in row else f"{'-':>11}" for k in KEYS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="a,b,c,d,e")
    ap.add_argument("--methods", default="before,now", help=f"comma list of {', '.join(METHODS)}")
    ap.add_argument("--precision", default="auto", help="train precision (auto = bf16 where the CPU has bf16 units)")
    ap.add_argument("--volume-iters-per-epoch", type=int, default=12, help="volume cases: iterations per epoch (20 epochs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paired", type=int, default=0, choices=range(len(PAIRED_SUBJECTS) + 1), metavar="N",
                    help="semi-supervised: N further subjects in both contrasts, co-registered, given to training as pairs")
    ap.add_argument("--pictures", default="", help="folder for source | translation | truth | error pictures")
    ap.add_argument("--json", default="faithfulness.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"unknown method {m}; choose from {', '.join(METHODS)}")
    work = Path(tempfile.mkdtemp(prefix="faithfulness_"))
    all_results = {}
    t0 = time.perf_counter()
    for case in args.cases.split(","):
        print(f"case {case}: {CASE_NAMES[case]}", flush=True)
        all_results[case] = run_case(case, methods, work, args)
        write_json(args.json, {"machine": machine(), "args": vars(args), "results": all_results})
    print_table(all_results)
    print(f"total {time.perf_counter() - t0:.0f} s; wrote {write_json(args.json, {'machine': machine(), 'args': vars(args), 'results': all_results})}")


if __name__ == "__main__":
    main()
