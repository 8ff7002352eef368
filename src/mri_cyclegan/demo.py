"""`mri-cyclegan demo`: train on the embedded ICBM 2009c data, evaluate both directions on held-out slices, report."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from .baselines import apply_lut
from .config import Config
from .evaluate import score_all, summarize
from .report import DirectionResult, Example, write_report

log = logging.getLogger(__name__)

# CPU defaults for the demo (tuned on training loss and time only, never on the test slices)
DEMO_OVERRIDES = {
    "data.image_size": 96,
    "model.ngf": 16,
    "model.n_blocks": 6,
    "model.prior": "inverse_histogram",
    "train.batch_size": 4,
    "train.lambda_identity": 0.0,  # identity is meaningless when the contrasts are inverted
    "train.epochs": 5,
    "train.epochs_decay": 5,
    "train.save_every": 0,
}


def demo_config(minutes: float, seconds_per_iter: float) -> Config:
    cfg = Config().replace(**DEMO_OVERRIDES)
    total = max(cfg.train.total_epochs, int(minutes * 60 / seconds_per_iter))
    return cfg.replace(**{"train.iters_per_epoch": max(1, math.ceil(total / cfg.train.total_epochs))})


def _model_space_to_unit(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, np.float64) + 1) / 2


def score_split(translator, split, luts: dict[str, np.ndarray]) -> list[DirectionResult]:
    """Model, identity and inverse-histogram scores on the held-out slices, both directions."""
    results = []
    for direction, src, ref in (("t1_to_t2", split.t1_test, split.t2_test), ("t2_to_t1", split.t2_test, split.t1_test)):
        preds = translator.translate_slices(src, direction)
        refs = [_model_space_to_unit(r) for r in ref]
        methods = {
            "model": [_model_space_to_unit(p) for p in preds],
            "identity": [_model_space_to_unit(s) for s in src],
            "inverse_histogram": [_model_space_to_unit(apply_lut(s, luts[direction])) for s in src],
        }
        scores = {k: score_all(v, refs, split.mask_test) for k, v in methods.items()}
        per_image = [{"slice": int(z), **{k: scores[k][i] for k in scores}} for i, z in enumerate(split.test_index)]
        pick = np.linspace(0, len(src) - 1, 4).round().astype(int)
        examples = [Example(f"axial {split.test_index[i]}", _model_space_to_unit(src[i]), methods["model"][i], refs[i], split.mask_test[i]) for i in pick]
        results.append(DirectionResult(direction, {k: summarize(v) for k, v in scores.items()}, per_image, examples))
    return results


def run_demo(out: str | Path, minutes: float = 10.0, progress: bool = True, device: str = "auto", seed: int = 0) -> dict:
    """Train for about ``minutes``, evaluate T1->T2 and T2->T1 on the held-out slices, write the report."""
    from .data.demo import demo_split
    from .inference import Translator
    from .training.trainer import Trainer, priors_from_data

    out = Path(out)
    run_dir = out / "run"
    base = Config().replace(**DEMO_OVERRIDES, **{"train.device": device, "train.seed": seed})
    split = demo_split(base.data)
    log.info("demo data: %d T1 / %d T2 training slices, %d held-out test slices", len(split.t1_train), len(split.t2_train), len(split.test_index))

    probe = Trainer(base, split.t1_train, split.t2_train, run_dir)  # measure this machine's speed
    probe.train_step(*probe.batches.next())
    t = time.perf_counter()
    for _ in range(2):
        probe.train_step(*probe.batches.next())
    s_per_iter = (time.perf_counter() - t) / 2
    del probe
    cfg = demo_config(minutes, s_per_iter).replace(**{"train.device": device, "train.seed": seed})
    log.info("%.2f s/iteration -> %d iterations in ~%.1f min", s_per_iter, cfg.train.iters_per_epoch * cfg.train.total_epochs, minutes)

    trainer = Trainer(cfg, split.t1_train, split.t2_train, run_dir)
    t0 = time.perf_counter()
    trainer.fit(progress=progress)
    train_seconds = time.perf_counter() - t0

    translator = Translator(trainer.model, cfg, device=device)
    results = score_split(translator, split, dict(zip(("t1_to_t2", "t2_to_t1"), priors_from_data(split.t1_train, split.t2_train))))
    extra = {"train_seconds": round(train_seconds, 1), "n_test_slices": len(split.test_index), "iterations": trainer.step,
             "seconds_per_iteration": round(train_seconds / max(1, trainer.step), 3), "config": cfg.to_dict(),
             "precision": trainer.precision, "device": str(trainer.device)}
    notes = [
        "Data: ICBM 2009c nonlinear symmetric T1/T2 averages (MNI). Training is unpaired: T1 and T2 slices are sampled "
        "and augmented independently. Test: held-out axial slices (none within 2 mm of a training slice) with their exact T1/T2 pairs.",
        "Metrics inside the brain mask, at the model's resolution; prediction and reference both in the target contrast's "
        "volume normalisation (0.5/99.5 percentiles -> [0, 1]); data range 1; SSIM 11x11 Gaussian window (sigma 1.5).",
        f"Trained {trainer.step} iterations in {train_seconds:.0f} s on {trainer.device} ({trainer.precision}).",
    ]
    write_report(out, results, title="mri-cyclegan demo: ICBM 2009c held-out slices", notes=notes, run_dir=run_dir, extra=extra)
    return json.loads((out / "metrics.json").read_text())
