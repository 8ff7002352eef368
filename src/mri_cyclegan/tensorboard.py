"""Optional TensorBoard logging (``train --tensorboard``): every iteration's losses and learning rate (from
losses.csv, so nothing is computed twice), validation scores and the epoch's sample grid. Imported only when
the flag is given; needs the ``tensorboard`` package (``pip install 'mri-cyclegan[tensorboard]'``)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .errors import InputError
from .run_folder import RunLayout


def require_tensorboard() -> None:
    """One clear line when the optional package is missing (checked before a run folder is touched)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise InputError("--tensorboard needs the tensorboard package: pip install 'mri-cyclegan[tensorboard]'") from None


class TensorBoardLog:
    def __init__(self, log_dir: str | Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir))
        self.last_step = 0

    def epoch(self, trainer, scores: dict[str, float] | None) -> None:
        from PIL import Image

        with open(trainer.layout[RunLayout.LOSSES_CSV], newline="") as fh:
            for row in csv.DictReader(fh):
                step = int(row["step"])
                if step <= self.last_step:
                    continue
                for k, v in row.items():
                    if k not in ("step", "epoch") and v not in ("", None):
                        self.writer.add_scalar("lr" if k == "lr" else f"loss/{k}", float(v), step)
                self.last_step = step
        for k, v in (scores or {}).items():
            self.writer.add_scalar(f"val/{k}", v, trainer.step)
        grid = trainer.layout.sample(trainer.epoch)
        if grid.is_file():
            img = np.asarray(Image.open(grid).convert("L"))
            self.writer.add_image("samples", img[None], trainer.step, dataformats="CHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
