"""Validation across epochs: paired T1/T2 files (matched by name, as ``evaluate`` matches them) translated at
native resolution through the same path as ``translate`` and scored like ``evaluate`` (each image mapped to
[0, 1] by its own 0.5/99.5 percentiles, automatic foreground mask of the reference, PSNR/SSIM/MAE).

Used after every epoch of ``train --val-t1/--val-t2`` (``val.csv``, ``val.png``, ``checkpoints/best``) and by
``evaluate --all-checkpoints`` (every saved checkpoint scored, the best marked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

log = logging.getLogger(__name__)

DIRECTIONS = ("t1_to_t2", "t2_to_t1")
KEYS = ("psnr", "ssim", "mae")


@dataclass
class ValidationPair:
    name: str
    t1: object  # Volume
    t2: object
    t1_unit: np.ndarray  # canonical, [0, 1]
    t2_unit: np.ndarray
    mask_t1: np.ndarray
    mask_t2: np.ndarray


class PairedValidation:
    """Pairs of (T1, T2) files of the same subject/slice, read once; ``score(translator)`` -> mean scores."""

    def __init__(self, t1: str | Path, t2: str | Path, max_pairs: int = 16, directions: tuple[str, ...] = DIRECTIONS) -> None:
        from .evaluate import load_canonical, match_pairs, to_unit
        from .io import list_inputs
        from .metrics import foreground_mask

        self.directions = directions
        pairs = match_pairs(list_inputs(t1, "--val-t1"), list_inputs(t2, "--val-t2"))[:max_pairs]
        self.pairs: list[ValidationPair] = []
        for a, b in pairs:
            da, va = load_canonical(a)
            db, vb = load_canonical(b)
            if da.shape != db.shape:
                raise InputError(f"validation pair {a} ({da.shape}) and {b} ({db.shape}) differ in shape; pairs must be co-registered")
            ua, ub = to_unit(da), to_unit(db)
            self.pairs.append(ValidationPair(a.name, va, vb, ua, ub, foreground_mask(ua), foreground_mask(ub)))
        if not self.pairs:
            raise InputError(f"no validation pairs: --val-t1 {t1} and --val-t2 {t2} share no file names")
        log.info("validation: %d paired T1/T2 files, scored after every epoch", len(self.pairs))

    def score(self, translator) -> dict[str, float]:
        """{'t1_to_t2_psnr': ..., 't2_to_t1_ssim': ..., 'mean_psnr': ...}: means over the pairs."""
        from .evaluate import to_unit
        from .io.nifti import to_canonical
        from .metrics import score

        out: dict[str, float] = {}
        for direction in self.directions:
            rows = []
            for p in self.pairs:
                src, ref, mask = (p.t1, p.t2_unit, p.mask_t2) if direction == "t1_to_t2" else (p.t2, p.t1_unit, p.mask_t1)
                pred = translator.translate(src, direction)
                pred = pred if pred.ndim == 2 else to_canonical(pred, src.affine)
                rows.append(score(to_unit(pred), ref, mask))
            for k in KEYS:
                out[f"{direction}_{k}"] = float(np.mean([r[k] for r in rows]))
        out["mean_psnr"] = float(np.mean([out[f"{d}_psnr"] for d in self.directions]))
        return out


def checkpoint_epoch(path: Path) -> int:
    from .training.checkpoint import load_checkpoint

    _, meta, _ = load_checkpoint(path)
    return int(meta.get("epoch", 0))


def score_checkpoints(run: str | Path, source: str | Path, reference: str | Path, direction: str, device: str = "auto") -> list[dict]:
    """Every checkpoint of a run folder scored on paired (source, reference) files, ordered by epoch:
    [{'checkpoint', 'epoch', '<direction>_psnr', ..., 'best'}]. The best has the highest PSNR."""
    from .inference import Translator

    folder = Path(run) / "checkpoints" if (Path(run) / "checkpoints").is_dir() else Path(run)
    ckpts = sorted(folder.glob("*.safetensors"))
    if not ckpts:
        raise InputError(f"no checkpoints (*.safetensors) in {folder}; give a run folder")
    t1, t2 = (source, reference) if direction == "t1_to_t2" else (reference, source)
    val = PairedValidation(t1, t2, max_pairs=10**6, directions=(direction,))
    rows = []
    for c in ckpts:
        translator = Translator.from_checkpoint(c, device=device)
        scores = val.score(translator)
        rows.append({"checkpoint": c.name, "epoch": checkpoint_epoch(c), **{k: v for k, v in scores.items() if k != "mean_psnr"}})
        log.info("%s (epoch %d): %.2f dB", c.name, rows[-1]["epoch"], scores[f"{direction}_psnr"])
    rows.sort(key=lambda r: (r["epoch"], r["checkpoint"]))
    best = max(rows, key=lambda r: r[f"{direction}_psnr"])
    for r in rows:
        r["best"] = r is best
    return rows


def plot_validation(rows: list[dict[str, float]], path: Path) -> None:
    """PSNR and SSIM of both directions against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io.atomic import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = [r["epoch"] for r in rows]
    for ax, key in zip(axes, ("psnr", "ssim")):
        for d in DIRECTIONS:
            ax.plot(epochs, [r[f"{d}_{key}"] for r in rows], marker="o", ms=3, label=d.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_title(f"validation {key.upper()}" + (" (dB)" if key == "psnr" else ""))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


class EpochValidation:
    """The trainer's per-epoch hook (rank 0): score, append to val.csv, plot val.png, keep checkpoints/best."""

    def __init__(self, validation: PairedValidation, run_dir: Path) -> None:
        self.validation = validation
        self.run_dir = Path(run_dir)
        self.csv = self.run_dir / "val.csv"

    def rows(self) -> list[dict[str, float]]:
        import csv

        if not self.csv.is_file():
            return []
        with open(self.csv, newline="") as fh:
            return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh) if all(v not in ("", None) for v in r.values())]

    def __call__(self, trainer) -> dict[str, float]:
        import csv

        from .inference import Translator
        from .io.atomic import atomic_path

        translator = Translator(trainer.model, trainer.config, device=str(trainer.device), precision=trainer.precision)
        try:
            scores = self.validation.score(translator)
        finally:
            trainer.model.train()
        row = {"epoch": float(trainer.epoch), "step": float(trainer.step), **scores}
        rows = [r for r in self.rows() if r["epoch"] < trainer.epoch] + [row]  # a resumed run rewrites epochs it repeats
        with atomic_path(self.csv) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            w.writeheader()
            for r in rows:
                w.writerow({k: (int(v) if k in ("epoch", "step") else f"{v:.6g}") for k, v in r.items()})
        plot_validation(rows, self.run_dir / "val.png")
        best = max(rows, key=lambda r: r["mean_psnr"])
        if best is row:
            trainer.save("best")
        log.info("validation epoch %d: T1->T2 %.2f dB / SSIM %.4f, T2->T1 %.2f dB / SSIM %.4f%s", trainer.epoch,
                 scores["t1_to_t2_psnr"], scores["t1_to_t2_ssim"], scores["t2_to_t1_psnr"], scores["t2_to_t1_ssim"],
                 " (best so far: checkpoints/best.safetensors)" if best is row else f" (best: epoch {int(best['epoch'])})")
        return scores
