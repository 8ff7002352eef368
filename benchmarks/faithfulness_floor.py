"""What limits a translation on the faithfulness cases, and how much is there to gain over the lookup table at all?

The simulated test subject (``benchmarks/faithfulness.py``, subject 100) is known without its scanner effects, so the
lookup table's error can be taken apart. For each case run and direction, per-slice PSNR / SSIM in the brain mask
(the faithfulness protocol) of:

    lookup table                   the run's table on the scan, as every benchmark scores it
    table, source without noise    the same table on the source contrast without its magnitude noise (in the scan's
                                   intensity window)
    table, source without noise    ... and without its bias field (only the tissue maps' contrast is left)
      or bias
    oracle: truth without noise    the true target contrast, bias field kept, noise removed: what no translation can
                                   beat (the reference scan's own noise is not predictable from the source)
    oracle: truth without noise    the true target contrast without its bias field either: the best a translation can
      or bias                      do without knowing the reference's bias field, which the source scan does not hold
    table, denoised without        the table's translation through a Gaussian whose width is chosen from that
      ground truth                 translation alone (Noise2Self, Batson & Royer 2019: the width that minimises the
                                   J-invariant loss, the filter with its centre weight removed against the image): how
                                   much of the room an unpaired method can take by denoising

The table's gap to the second oracle splits into what input noise costs (a translation that denoises its input gets
it back, one that looks like a real scan does not), what the input's bias field costs, and what is left: the table's
own mapping (partial volume, lesions).

    python benchmarks/faithfulness_floor.py a:/tmp/faithfulness_x/a/run_now e:/tmp/faithfulness_x/e/run_now \\
        --json faithfulness_floor.json

Seconds per case (numpy and the table only). Run alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
import faithfulness as fb  # noqa: E402
from common import machine, write_json  # noqa: E402
from residual_signal import TableOnly  # noqa: E402

KEYS = ("psnr", "ssim", "boundary_err", "lesion_recovery")
SIGMAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2)  # Gaussian widths (voxels) the self-calibrated denoiser picks from
HEAD = 0.02  # [0, 1] intensity above which a voxel of the translation is head, where the J-invariant loss is measured


def centre_weight(sigma: float, ndim: int) -> float:
    """The centre tap of scipy's sampled Gaussian of width ``sigma`` in ``ndim`` dimensions (truncate = 4)."""
    r = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return float((taps[r] / taps.sum()) ** ndim)


def self_calibrated_gaussian(img: np.ndarray) -> tuple[np.ndarray, float]:
    """``img`` smoothed by the Gaussian width whose J-invariant version (centre weight removed, renormalised) is closest
    to ``img`` itself over the head. With noise independent between voxels that loss is the distance to the noise-free
    image plus the noise variance, so it picks the width without a reference (Noise2Self)."""
    from scipy import ndimage

    head = img > HEAD

    def loss(sigma: float) -> float:
        c = centre_weight(sigma, img.ndim)
        blind = (ndimage.gaussian_filter(img, sigma) - c * img) / (1 - c)
        return float(np.mean((blind - img)[head] ** 2))

    sigma = min(SIGMAS, key=loss)
    return ndimage.gaussian_filter(img, sigma).astype(np.float32), sigma


def denoised(table: np.ndarray, kind: str) -> np.ndarray:
    """The table's translation, self-calibrated-denoised as ``translate`` would see it: each 2D slice on its own
    (Kaggle-style images), the whole volume at once otherwise."""
    if kind == "png":
        return np.stack([self_calibrated_gaussian(table[:, :, k])[0] for k in range(table.shape[2])], 2)
    return self_calibrated_gaussian(table)[0]


def without(s, contrast: str, bias: bool, kind: str) -> np.ndarray:
    """Subject s's image of ``contrast`` without noise (and without bias field unless ``bias``), in the scan's own
    intensity window: the translator maps [0, the 99.5th percentile] to its input range (of each slice for 2D images,
    of the volume for volumes), and the scan's magnitude noise lifts that percentile, so the noise-free image is scaled
    to the scan's percentile, or it would be read as another contrast level by the table."""
    clean = s.clean(contrast) * (s.bias[contrast] if bias else 1.0)
    scan = s.image(contrast)
    if kind == "png":  # each slice is its own image
        top = np.percentile(scan, 99.5, axis=(0, 1)) / np.maximum(np.percentile(clean, 99.5, axis=(0, 1)), 1e-6)
        return (clean * top[None, None, :]).astype(np.float32)
    return (clean * np.percentile(scan, 99.5) / np.percentile(clean, 99.5)).astype(np.float32)


def score_case(case: str, run: Path) -> dict:
    kind = fb.CASES[case]["kind"]
    s, vols, zs = fb.test_data(kind)
    table_tr = TableOnly.from_checkpoint(run / "checkpoints" / "last.safetensors", device="cpu")
    out: dict = {}
    for direction, (a, b) in fb.DIRECTIONS.items():
        truth, source = fb.unit_slices(vols[b], zs), fb.unit_slices(vols[a], zs)
        table = fb.translate_test(table_tr, kind, s, vols, zs, direction)
        preds = {
            "lookup table": table,
            "table, source without noise": fb.translate_test(table_tr, kind, s, {**vols, a: without(s, a, True, kind)}, zs, direction),
            "table, source without noise or bias": fb.translate_test(table_tr, kind, s, {**vols, a: without(s, a, False, kind)}, zs, direction),
            "oracle: truth without noise": fb.unit_slices(without(s, b, True, kind), zs),
            "oracle: truth without noise or bias": fb.unit_slices(without(s, b, False, kind), zs),
            "table, denoised without ground truth": denoised(table, kind),
        }
        out[direction] = {}
        for name, p in preds.items():
            m = fb.faithfulness_metrics(p, truth, source, s, zs, table)
            out[direction][name] = {k: m[k] for k in KEYS if k in m}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="CASE:RUN_FOLDER of benchmarks/faithfulness.py (CASE = a..e)")
    ap.add_argument("--json", default="faithfulness_floor.json")
    args = ap.parse_args()
    rows = []
    print(f"{'case':<4} {'direction':<9} {'':<38} {'PSNR':>6} {'- table':>7} {'SSIM':>6} {'outline':>7} {'lesion':>6}")
    for spec in args.models:
        case, run = spec.split(":", 1)
        scores = score_case(case, Path(run))
        rows.append({"case": case, "run": run, **scores})
        for direction, r in scores.items():
            t = r["lookup table"]["psnr"]
            for name, m in r.items():
                lesion = f"{m['lesion_recovery']:>6.2f}" if "lesion_recovery" in m else f"{'-':>6}"
                print(f"{case:<4} {direction:<9} {name:<38} {m['psnr']:>6.2f} {m['psnr'] - t:>+7.2f} {m['ssim']:>6.3f} {m['boundary_err']:>7.3f} "
                      f"{lesion}", flush=True)
    print("wrote", write_json(args.json, {"machine": machine(), "models": rows}))


if __name__ == "__main__":
    main()
