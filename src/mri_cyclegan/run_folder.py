"""What a run folder holds, and the rule that a run is never replaced unless the user asks."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .io.atomic import remove_stale_temps

log = logging.getLogger(__name__)

FAITHFULNESS_CSV = "faithfulness.csv"  # the safety net's per-epoch drift from the lookup table


@dataclass(frozen=True)
class RunLayout:
    """Every file and folder a training run writes, by name: the trainer, validation, TensorBoard, the model card,
    the report, ``--overwrite`` and ``--resume`` all ask this object, so none of them can miss one."""

    root: Path

    CONFIG = "config.json"
    LOSSES_CSV = "losses.csv"
    LOSSES_PNG = "losses.png"
    PROGRESS_GIF = "progress.gif"
    TRAIN_LOG = "train.log"
    FAITHFULNESS_CSV = FAITHFULNESS_CSV
    VAL_CSV = "val.csv"  # paired validation (or its unpaired proxy) per epoch
    VAL_PNG = "val.png"
    MODEL_CARD = "MODEL_CARD.md"
    CHECKPOINTS = "checkpoints"
    SAMPLES = "samples"
    TENSORBOARD = "tensorboard"
    FILES = (CONFIG, LOSSES_CSV, LOSSES_PNG, PROGRESS_GIF, TRAIN_LOG, FAITHFULNESS_CSV, VAL_CSV, VAL_PNG, MODEL_CARD)
    DIRS = (CHECKPOINTS, SAMPLES, TENSORBOARD)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def __getitem__(self, name: str) -> Path:
        """``layout[RunLayout.VAL_CSV]`` -> the path of that file in this run."""
        if name not in self.FILES + self.DIRS:
            raise KeyError(f"{name!r} is not a file of a run folder")
        return self.root / name

    def checkpoint(self, name: str = "last") -> Path:
        return self.root / self.CHECKPOINTS / f"{name}.safetensors"

    def sample(self, epoch: int, prefix: str = "epoch") -> Path:
        return self.root / self.SAMPLES / f"{prefix}_{epoch:03d}.png"

    @classmethod
    def of_checkpoint(cls, path: str | Path) -> RunLayout | None:
        """The run a checkpoint file belongs to (RUN/checkpoints/X.safetensors with RUN/config.json), else None."""
        p = Path(path)
        if p.parent.name != cls.CHECKPOINTS or not (p.parent.parent / cls.CONFIG).is_file():
            return None
        return cls(p.parent.parent)


RUN_FILES = RunLayout.FILES
RUN_DIRS = RunLayout.DIRS


def holds_run(folder: str | Path) -> bool:
    """True when ``folder`` already holds (part of) a training run. A ``train.log`` alone is not one: it is what a start
    refused while reading its inputs leaves (training writes ``config.json`` first), and the next start appends to it."""
    f = Path(folder)
    return any((f / name).exists() for name in RUN_FILES + RUN_DIRS if name != RunLayout.TRAIN_LOG)


def prepare_run_folder(folder: str | Path, resume: bool, overwrite: bool, flag: str = "--out", shown: str | Path | None = None,
                       can_resume: bool = True) -> Path:
    """Check ``folder`` before a run starts: a new run refuses a folder that holds one (unless ``overwrite``,
    which removes that run's own files and nothing else); ``resume`` needs one. Temp files left by a killed
    process are removed either way. ``shown``: the path the user typed, for messages (default ``folder``)."""
    f = Path(folder)
    shown = f if shown is None else shown
    if f.exists() and not f.is_dir():
        raise InputError(f"{flag} {f} is a file; the run needs a folder")
    if resume and overwrite:
        raise InputError("--resume and --overwrite contradict each other; pick one")
    if not resume and holds_run(f):
        if not overwrite:
            options = "pass --resume to continue it, --overwrite to replace it," if can_resume else "pass --overwrite to replace it"
            raise InputError(f"{flag} {shown} already holds a training run; {options} or choose another {flag}")
        log.warning("--overwrite: removing the previous run's files in %s", f)
        for name in RUN_FILES:
            (f / name).unlink(missing_ok=True)
        for name in RUN_DIRS:
            shutil.rmtree(f / name, ignore_errors=True)
    stale = remove_stale_temps(f)
    if stale:
        log.info("removed %d temporary file(s) left by an interrupted run in %s", len(stale), f)
    return f
