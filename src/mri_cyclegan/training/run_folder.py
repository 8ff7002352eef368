"""What a run folder holds, and the rule that a run is never replaced unless the user asks."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..errors import InputError
from ..io.atomic import remove_stale_temps

log = logging.getLogger(__name__)

FAITHFULNESS_CSV = "faithfulness.csv"  # the safety net's per-epoch drift from the lookup table
RUN_FILES = ("config.json", "losses.csv", "losses.png", "progress.gif", "train.log", FAITHFULNESS_CSV)
RUN_DIRS = ("checkpoints", "samples")


def holds_run(folder: str | Path) -> bool:
    """True when ``folder`` already holds (part of) a training run."""
    f = Path(folder)
    return any((f / name).exists() for name in RUN_FILES + RUN_DIRS)


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
