"""What a run leaves behind besides checkpoints: losses.csv/png, sample grids, progress.gif."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from ..io.atomic import atomic_path

LOSS_KEYS = ("loss_g", "loss_g_gan", "loss_cycle", "loss_identity", "loss_faithful", "loss_paired", "loss_d")
ADDED_LOSS_KEYS = ("loss_faithful", "loss_paired")  # columns a losses.csv written before they existed lacks (read as 0 on resume)
CSV_FIELDS = ("step", "epoch", *LOSS_KEYS, "lr")


def _csv_row(row: dict[str, float]) -> dict[str, str | int]:
    return {k: (int(row[k]) if k in ("step", "epoch") else f"{row[k]:.6g}") for k in CSV_FIELDS}


def to_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Model space [-1, 1] to 8-bit for display."""
    a = x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    return np.clip(np.rint((a + 1) * 127.5), 0, 255).astype(np.uint8)


SAMPLE_LABELS = ("real T1", "fake T2", "reconstructed T1", "real T2", "fake T1", "reconstructed T2")


def sample_grid(rows: list[list[torch.Tensor]], pad: int = 2, labels: tuple[str, ...] | None = None, title: str = "") -> np.ndarray:
    """Tile rows of (H, W) images (any sizes, each at its own resolution) into one uint8 image with a small
    gap; with ``labels``, a header line names each column (and ``title`` goes first in it)."""
    from PIL import Image, ImageDraw

    tiles = [[to_uint8(im) for im in row] for row in rows]
    h = max(t.shape[0] for row in tiles for t in row)
    w = max(t.shape[1] for row in tiles for t in row)
    ncol = max(len(row) for row in tiles)
    head = 14 if labels or title else 0
    out = np.zeros((head + len(tiles) * (h + pad) + pad, ncol * (w + pad) + pad), np.uint8)
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            y, x = head + pad + r * (h + pad), pad + c * (w + pad)
            out[y : y + t.shape[0], x : x + t.shape[1]] = t
    if head:
        img = Image.fromarray(out)
        draw = ImageDraw.Draw(img)
        for c, text in enumerate(labels or ()):
            draw.text((pad + c * (w + pad) + 2, 1), text if c or not title else f"{title}: {text}", fill=255)
        if title and not labels:
            draw.text((pad + 2, 1), title, fill=255)
        out = np.asarray(img)
    return out


def save_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")


def make_gif(frames: list[Path], path: Path, ms_per_frame: int = 400) -> None:
    from PIL import Image

    if not frames:
        return
    images = []
    for f in frames:
        images.append(Image.open(f).convert("L"))
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)


def append_csv(path: Path, row: dict[str, float], replace_from_epoch: int | None = None) -> None:
    """Rewrite ``path`` (atomically) with its rows plus ``row``; rows of epochs >= ``replace_from_epoch`` are
    dropped first (a resumed run repeats them)."""
    rows: list[dict[str, str]] = []
    if path.is_file():
        with path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if replace_from_epoch is None or float(r.get("epoch") or 0) < replace_from_epoch]
    fmt = {k: (str(int(v)) if k in ("epoch", "step") else f"{v:.6g}") for k, v in row.items()}
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
        w.writeheader()
        w.writerows([*rows, fmt])


class LossLog:
    """Per-iteration losses in ``losses.csv``; on resume, rows after the checkpoint's step are dropped."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = []
        if resume_step is not None and path.exists():
            with path.open(newline="") as f:
                for r in csv.DictReader(f):
                    try:  # a row cut short by a killed process is dropped
                        row = {k: float(r[k] if k in r or k not in ADDED_LOSS_KEYS else 0.0) for k in CSV_FIELDS}
                    except (TypeError, ValueError, KeyError):
                        continue
                    if row["step"] <= resume_step:
                        self.rows.append(row)
        self._rewrite()

    def _rewrite(self) -> None:
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(_csv_row(r) for r in self.rows)

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=CSV_FIELDS).writerow(_csv_row(row))

    def plot(self, path: Path) -> None:
        plot_losses(self.rows, path)


def plot_losses(rows: list[dict[str, float]], path: Path, smooth: int = 0) -> None:
    """Generator, discriminator, cycle and identity curves (moving average) against iteration."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in rows])
    k = smooth or max(1, len(rows) // 50)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, label in (("loss_g_gan", "generator (adversarial)"), ("loss_d", "discriminator"),
                       ("loss_cycle", "cycle (x λ)"), ("loss_identity", "identity (x λ·w)"),
                       ("loss_faithful", "anchor + structure (+ PatchNCE)"), ("loss_paired", "paired (x λ)")):  # fmt: skip
        v = np.array([r[key] for r in rows])
        if not (v > 0).any():
            continue
        if k > 1 and len(v) >= k:
            v = np.convolve(v, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1 :], v, label=label)
        else:
            ax.plot(steps, v, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
