"""Does the intensity prior (and the output calibration) hold when the unpaired T1 and T2 training sets differ in
tissue proportions, coverage and background? Phantom cohorts with known tissue maps:

    T1 training set: 40 slices 128x128, CSF/GM/WM 10/45/45 %, brain in air
    T2 training set: 40 slices 112x144, CSF/GM/WM 40/35/25 %, no background at all (brain fills the image)
    test:            8 paired 128x128 slices, 25/40/35 %, in air, with the true tissue maps

Prints, per direction, the per-tissue error |mean(translated) - mean(true other contrast)| in model space
([-1, 1], each image windowed [0, p99.5]) on pixels 2 away from tissue borders, for: plain quantile matching
(the previous prior), the re-weighted prior, a CycleGAN with the prior (raw and calibrated outputs) and a plain
CycleGAN (no prior), each model trained for --minutes of wall-clock time with the same small network.

    python benchmarks/prior_robustness.py --minutes 3

Writes benchmarks/results/prior_robustness.json. Run alone (never two PyTorch processes at once on 2 cores).
"""

from __future__ import annotations

import argparse
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

from tests.phantoms import T1, T2, TISSUES, render_tissues, tissue_labels  # noqa: E402

DIRECTIONS = ("t1_to_t2", "t2_to_t1")


def write_set(folder: Path, n: int, shape, fractions, background: bool, contrast, seed: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = render_tissues(tissue_labels(shape, fractions, background, rng), contrast, rng, scale=30000)
        Image.fromarray(np.clip(img, 0, 65535).astype(np.uint16)).save(folder / f"{i:03d}.png")


def tissue_errors(pred: list[np.ndarray], ref: list[np.ndarray], labs: list[np.ndarray]) -> dict[str, float]:
    from scipy import ndimage

    out = {}
    for k, name in TISSUES.items():
        pure = [ndimage.binary_erosion(lab == k, iterations=2) for lab in labs]
        p = np.concatenate([a[m] for a, m in zip(pred, pure)])
        r = np.concatenate([b[m] for b, m in zip(ref, pure)])
        out[name] = abs(float(p.mean() - r.mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="training budget per model (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from mri_cyclegan.baselines import apply_lut, inverse_histogram_lut
    from mri_cyclegan.config import Config
    from mri_cyclegan.data.dataset import load_domain
    from mri_cyclegan.data.preprocess import Preprocessor
    from mri_cyclegan.inference import Translator
    from mri_cyclegan.io import Volume
    from mri_cyclegan.training.trainer import Trainer

    torch.manual_seed(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="prior_bench_"))
    write_set(tmp / "t1", 40, (128, 128), (0.10, 0.45, 0.45), True, T1, seed=1)
    write_set(tmp / "t2", 40, (112, 144), (0.40, 0.35, 0.25), False, T2, seed=2)
    rng = np.random.default_rng(3)
    labs = [tissue_labels((128, 128), (0.25, 0.40, 0.35), True, rng) for _ in range(8)]
    raw = {"t1": [render_tissues(lab, T1, rng, scale=30000) for lab in labs], "t2": [render_tissues(lab, T2, rng, scale=30000) for lab in labs]}

    base = Config().replace(**{
        "data.patch_size": 64, "model.ngf": 16, "model.n_blocks": 6, "model.ndf": 32, "train.batch_size": 4,
        "train.iters_per_epoch": 40, "train.epochs": 10, "train.save_every": 0, "train.minutes": args.minutes,
        "train.device": "cpu", "train.precision": "fp32", "train.seed": args.seed, "train.calibrate": True,
    })  # fmt: skip
    pre = Preprocessor(base.data)
    test = {c: [pre.forward(Volume(im))[0][0] for im in raw[c]] for c in ("t1", "t2")}
    src_ref = {"t1_to_t2": (test["t1"], test["t2"]), "t2_to_t1": (test["t2"], test["t1"])}
    t1_set, t2_set = load_domain(tmp / "t1", base.data, "T1"), load_domain(tmp / "t2", base.data, "T2")
    a, b = t1_set.tissue_values(), t2_set.tissue_values()

    rows: dict[str, dict[str, dict[str, float]]] = {}
    for name, reweight in (("prior, plain quantiles (before)", False), ("prior, re-weighted (now)", True)):
        luts = {"t1_to_t2": inverse_histogram_lut(a, b, reweight=reweight), "t2_to_t1": inverse_histogram_lut(b, a, reweight=reweight)}
        rows[name] = {d: tissue_errors([apply_lut(x, luts[d]) for x in src_ref[d][0]], src_ref[d][1], labs) for d in DIRECTIONS}

    seconds = {}
    for label, prior in (("CycleGAN + prior", "inverse_histogram"), ("plain CycleGAN", "none")):
        cfg = base.replace(**{"model.prior": prior})
        trainer = Trainer(cfg, t1_set, t2_set, tmp / f"run_{prior}")
        t0 = time.perf_counter()
        trainer.fit(progress=False)
        seconds[label] = (time.perf_counter() - t0, trainer.step)
        model = trainer.model.cpu().eval()
        tr = Translator(model, cfg, device="cpu")
        calibrated = {d: tissue_errors([tr.translate_stack(x[None], d)[0] for x in src_ref[d][0]], src_ref[d][1], labs) for d in DIRECTIONS}
        for g in model.generators():  # the same model without its output calibration
            g.calibration.lut.copy_(torch.linspace(-1, 1, g.calibration.lut.numel()))
        rawerr = {d: tissue_errors([tr.translate_stack(x[None], d)[0] for x in src_ref[d][0]], src_ref[d][1], labs) for d in DIRECTIONS}
        rows[f"{label}, raw outputs"] = rawerr
        rows[f"{label}, calibrated"] = calibrated

    print(f"\nper-tissue |mean error| in model space [-1, 1] (T1 set 10/45/45 % CSF/GM/WM with air, T2 set 40/35/25 % without; "
          f"test 25/40/35 %); models: {args.minutes:g} min each")
    print(f"{'method':<34} " + " ".join(f"{d.replace('_to_', '→').upper() + ' ' + t:>11}" for d in DIRECTIONS for t in ("CSF", "GM", "WM")))
    for name, per in rows.items():
        print(f"{name:<34} " + " ".join(f"{per[d][t]:>11.3f}" for d in DIRECTIONS for t in ("csf", "gm", "wm")))
    for label, (sec, steps) in seconds.items():
        print(f"{label}: {steps} iterations in {sec:.0f} s")
    path = write_json("prior_robustness.json", {"machine": machine(), "minutes": args.minutes, "errors": rows,
                                                "training": {k: {"seconds": s, "iterations": n} for k, (s, n) in seconds.items()}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
