"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder (same extension, ``.nii.gz`` kept whole); on success
    it replaces ``path``, on any error it is removed, so ``path`` is never half-written."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if p.name.endswith(".nii.gz") else p.suffix
    fd, name = tempfile.mkstemp(suffix=suffix, dir=p.parent, prefix=".tmp-")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
