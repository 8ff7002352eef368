"""Validation across epochs: paired T1/T2 files (matched by name, as ``evaluate`` matches them) translated at
native resolution through the same path as ``translate`` and scored by the same protocol as ``evaluate``
(:func:`mri_cyclegan.metrics.score`: each image mapped to [0, 1] by its own window, automatic foreground mask of
the reference; ``psnr``/``ssim``/``mae`` are means over slices, ``psnr_3d``/... whole volumes).
Without pairs (no file names match), an unpaired *proxy* instead: cycle error and a histogram distance.

Used after every epoch of ``train --val-t1/--val-t2`` (``val.csv``, ``val.png``, ``checkpoints/best``) and by
``evaluate --all-checkpoints`` (every saved checkpoint scored, the best marked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .directions import DIRECTIONS, Contrast, Direction
from .errors import InputError
from .metrics import SLICE_METRICS, foreground_mask, to_unit
from .run_folder import RunLayout

log = logging.getLogger(__name__)

KEYS = (*SLICE_METRICS, "psnr_3d", "ssim_3d")  # per direction in val.csv: slice means, then whole volumes


@dataclass
class ValidationPair:
    name: str
    t1: object  # Volume
    t2: object
    t1_unit: np.ndarray  # canonical, [0, 1]
    t2_unit: np.ndarray
    mask_t1: np.ndarray
    mask_t2: np.ndarray


def make_validation(t1: str | Path, t2: str | Path, max_files: int = 16):
    """PairedValidation when file names pair up, else UnpairedValidation (a proxy, said in the log)."""
    from .io.files import match_pairs

    from .io.bids import contrast_files

    a, b = contrast_files(t1, Contrast.T1, what="--val-t1"), contrast_files(t2, Contrast.T2, what="--val-t2")
    try:
        match_pairs(a, b)
    except InputError:
        log.warning("validation: no --val-t1 file name matches a --val-t2 one, so nothing can be compared with a truth; logging "
                    "an unpaired PROXY instead (cycle error and histogram distance), which cannot see hallucinations")
        return UnpairedValidation(a, b, max_files)
    return PairedValidation(a, b, max_files)


class PairedValidation:
    """Pairs of (T1, T2) files of the same subject/slice, read once; ``score(translator)`` -> mean scores."""

    paired = True
    best_key, higher_is_better = "mean_psnr", True

    def __init__(self, t1: str | Path | list[Path], t2: str | Path | list[Path], max_pairs: int = 16,
                 directions: tuple[Direction, ...] = DIRECTIONS) -> None:
        from .evaluate import load_canonical
        from .io.files import match_pairs

        self.directions = tuple(Direction(d) for d in directions)
        self.examples: list = []  # (direction, source, prediction, reference) of the first pair, [0, 1], after score()
        from .io.bids import contrast_files

        a = t1 if isinstance(t1, list) else contrast_files(t1, Contrast.T1, what="--val-t1")
        b = t2 if isinstance(t2, list) else contrast_files(t2, Contrast.T2, what="--val-t2")
        pairs = match_pairs(a, b)[:max_pairs]
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
        """{'t1_to_t2_psnr': ..., 't1_to_t2_psnr_3d': ..., 't1_to_t2_auroc': ..., 'mean_psnr': ...}: means over the
        pairs of :func:`mri_cyclegan.metrics.score`'s numbers (``psnr``: mean over slices, as ``evaluate`` reports it).
        ``*_auroc``: how well the translation's uncertainty map (translate --uncertainty) finds its voxels with
        |error| > 0.1 (NaN when no voxel is that wrong)."""
        from .io.geometry import AXES, to_canonical
        from .metrics import score, uncertainty_scores, unit_magnitude

        out: dict[str, float] = {}
        self.examples = []
        for direction in self.directions:
            rows = []
            for i, p in enumerate(self.pairs):
                src, ref, mask = (p.t1, p.t2_unit, p.mask_t2) if direction is Direction.T1_TO_T2 else (p.t2, p.t1_unit, p.mask_t1)
                pred, unc = translator.translate_with_uncertainty(src, direction)
                if pred.ndim == 3:
                    pred, unc = to_canonical(pred, src.affine), to_canonical(unc, src.affine)
                pred_unit = to_unit(pred)
                row = score(pred_unit, ref, mask, axis=AXES[translator.config.data.axis]).means()
                row["auroc"] = uncertainty_scores(unit_magnitude(unc, pred), pred_unit - ref, mask)["auroc"]
                rows.append(row)
                if i == 0:
                    self.examples.append((direction, p.t1_unit if direction is Direction.T1_TO_T2 else p.t2_unit, pred_unit, ref))
            for k in KEYS:
                out[f"{direction}_{k}"] = float(np.mean([r.get(k, r.get(k.removesuffix("_3d"))) for r in rows]))  # 2D: 3D = image
            aurocs = [r["auroc"] for r in rows if np.isfinite(r["auroc"])]
            out[f"{direction}_auroc"] = float(np.mean(aurocs)) if aurocs else float("nan")
        out["mean_psnr"] = float(np.mean([out[f"{d}_psnr"] for d in self.directions]))
        return out


class UnpairedValidation:
    """A proxy when no pairs exist: for each held-out file, the cycle error |x - G'(G(x))| (in [0, 1] units, inside
    the file's foreground) and the 1-Wasserstein distance between the translation's foreground intensities and
    those of the other contrast's held-out files. Lower is better for both; neither can tell a faithful
    translation from a hallucinating one, which is why the log, val.csv and the model card call it a proxy."""

    paired = False
    best_key, higher_is_better = "mean_proxy", False

    def __init__(self, t1: list[Path], t2: list[Path], max_files: int = 16) -> None:
        from .evaluate import load_canonical

        self.directions = DIRECTIONS
        self.examples: list = []
        self.sets = {}
        for key, files in ((Contrast.T1, t1[:max_files]), (Contrast.T2, t2[:max_files])):
            items = []
            for f in files:
                data, vol = load_canonical(f)
                unit = to_unit(data)
                items.append((vol, unit, foreground_mask(unit)))
            self.sets[key] = items
        self.values = {k: np.sort(np.concatenate([u[m] for _, u, m in v])) for k, v in self.sets.items()}
        log.info("validation (unpaired proxy): %d T1 and %d T2 files", len(self.sets[Contrast.T1]), len(self.sets[Contrast.T2]))

    def score(self, translator) -> dict[str, float]:
        from scipy.stats import wasserstein_distance

        from .io.geometry import to_canonical
        from .io.volume import Volume

        out: dict[str, float] = {}
        self.examples = []
        for direction in self.directions:
            src_key, tgt_key, back = direction.source, direction.target, direction.reverse
            cycle, preds = [], []
            for i, (vol, unit, mask) in enumerate(self.sets[src_key]):
                pred = translator.translate(vol, direction)
                rec = translator.translate(Volume(pred, vol.affine), back)
                canon = (lambda x: x) if pred.ndim == 2 else (lambda x: to_canonical(x, vol.affine))  # noqa: E731
                pu, ru = to_unit(canon(pred)), to_unit(canon(rec))
                cycle.append(float(np.abs(ru - unit)[mask].mean()))
                preds.append(pu[mask])
                if i == 0:
                    self.examples.append((direction, unit, pu, ru))
            out[f"{direction}_cycle_mae"] = float(np.mean(cycle))
            out[f"{direction}_hist_w1"] = float(wasserstein_distance(np.concatenate(preds), self.values[tgt_key]))
        out["mean_proxy"] = float(np.mean([out[f"{d}_{k}"] for d in self.directions for k in ("cycle_mae", "hist_w1")]))
        return out


def checkpoint_epoch(path: Path) -> int:
    from .checkpoints import load_checkpoint

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
    t1, t2 = (source, reference) if Direction(direction) is Direction.T1_TO_T2 else (reference, source)
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


def plot_validation(rows: list[dict[str, float]], path: Path, paired: bool = True) -> None:
    """PSNR and SSIM (paired), or cycle error and histogram distance (proxy), of both directions against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io.atomic import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = [r["epoch"] for r in rows]
    keys = (("psnr", "validation PSNR (dB)"), ("ssim", "validation SSIM")) if paired else (
        ("cycle_mae", "PROXY: cycle error (lower is better)"), ("hist_w1", "PROXY: histogram distance (lower is better)"))
    for ax, (key, title) in zip(axes, keys):
        for d in DIRECTIONS:
            ax.plot(epochs, [r[f"{d}_{key}"] for r in rows], marker="o", ms=3, label=d.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


class EpochValidation:
    """The trainer's per-epoch hook (rank 0): score, append to val.csv, plot val.png, keep checkpoints/best."""

    def __init__(self, validation, run_dir: Path) -> None:
        self.validation = validation
        self.run_dir = Path(run_dir)
        self.layout = RunLayout(self.run_dir)
        self.csv = self.layout[RunLayout.VAL_CSV]

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
        with trainer.averaged():  # the weights the checkpoint holds
            scores = self.validation.score(translator)  # the translator leaves the model's training mode as it was
        row = {"epoch": float(trainer.epoch), "step": float(trainer.step), **scores}
        rows = [r for r in self.rows() if r["epoch"] < trainer.epoch] + [row]  # a resumed run rewrites epochs it repeats
        with atomic_path(self.csv) as tmp, open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row), restval="nan")  # rows of an older version lack newer columns
            w.writeheader()
            for r in rows:
                w.writerow({k: (int(v) if k in ("epoch", "step") else f"{v:.6g}") for k, v in r.items()})
        v = self.validation
        plot_validation(rows, self.layout[RunLayout.VAL_PNG], v.paired)
        self.write_examples(trainer.epoch)
        sign = 1.0 if v.higher_is_better else -1.0
        best = max(rows, key=lambda r: sign * r[v.best_key])
        if best is row and v.paired:  # without pairs, the trainer's safety net (drift from the lookup table) keeps best
            trainer.save("best")
        shown = " ".join(f"{k}={val:.4g}" for k, val in scores.items())
        log.info("validation%s epoch %d: %s%s", "" if v.paired else " (unpaired PROXY)", trainer.epoch, shown,
                 (" (best so far: checkpoints/best.safetensors)" if best is row else f" (best: epoch {int(best['epoch'])})") if v.paired else "")
        return scores

    def write_examples(self, epoch: int) -> None:
        """samples/val_epoch_NNN.png: per direction, the first validation file's source | translation | truth (paired)
        or source | translation | cycle reconstruction (proxy); the middle axial slice of volumes."""
        import torch

        from .training.artifacts import sample_grid, save_png

        def middle(x: np.ndarray) -> torch.Tensor:
            x = x if x.ndim == 2 else np.rot90(x[:, :, x.shape[2] // 2])
            return torch.from_numpy(np.ascontiguousarray(x, np.float32) * 2 - 1)

        ex = self.validation.examples
        if not ex:
            return
        rows = [[middle(a), middle(b), middle(c)] for _, a, b, c in ex]
        third = "true" if self.validation.paired else "cycled back"
        labels = ("source (T1 / T2)", "translated", third)
        save_png(self.layout.sample(epoch, "val_epoch"), sample_grid(rows, labels=labels, title=f"val {epoch}"))
