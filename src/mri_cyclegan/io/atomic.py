"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError

TMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_parent(path: Path) -> None:
    """The nearest existing ancestor of ``path`` must be a folder (checkable before any work is done)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"cannot write {path}: {parent} is a file, not a folder; choose another output path")
            return


def ensure_parent(path: Path) -> None:
    """Create ``path``'s folder; a clear InputError when a parent is a file or cannot be created."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"cannot write {path}: a parent of it is a file, not a folder; choose another output path") from None
    except PermissionError:
        raise InputError(f"cannot write {path}: no permission to create {path.parent}") from None
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: {path.parent} is not a folder; choose another output path")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder (same extension, ``.nii.gz`` kept whole); on success
    it replaces ``path``, on any error it is removed, so ``path`` is never half-written.

    The result gets the permissions a plain ``open()`` would give it (the target's own mode when it is
    replaced, else 0666 minus the umask), not the private 0600 of a temp file. A process killed mid-write
    leaves a ``.tmp-*`` file behind; :func:`remove_stale_temps` clears those on the next run.
    """
    p = Path(path)
    ensure_parent(p)
    if p.is_dir():
        raise InputError(f"cannot write {p}: it is a folder; name a file")
    suffix = ".nii.gz" if p.name.endswith(".nii.gz") else p.suffix
    try:
        fd, name = tempfile.mkstemp(suffix=suffix, dir=p.parent, prefix=TMP_PREFIX)
    except PermissionError:
        raise InputError(f"cannot write {p}: no permission to write in {p.parent}") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # after the writer is done: some writers (safetensors) create their file 0600 themselves
        os.chmod(tmp, p.stat().st_mode & 0o777 if p.exists() else 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale_temps(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Delete ``.tmp-*`` files (and half-written series folders) that a killed process left in ``folder``."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = list((root.rglob if recursive else root.glob)(TMP_PREFIX + "*"))
    for f in found:
        if f.is_dir():
            import shutil

            shutil.rmtree(f, ignore_errors=True)
        elif f.exists():
            f.unlink(missing_ok=True)
    return found


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Like :func:`atomic_path` for a folder of files (a DICOM series): yield an empty temporary folder beside
    ``path``; on success it becomes ``path`` (replacing an existing folder), on error it is removed."""
    import shutil

    p = Path(path)
    ensure_parent(p)
    if p.exists() and not p.is_dir():
        raise InputError(f"cannot write {p}: it is a file; name a folder")
    try:
        tmp = Path(tempfile.mkdtemp(dir=p.parent, prefix=TMP_PREFIX))
    except PermissionError:
        raise InputError(f"cannot write {p}: no permission to write in {p.parent}") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if p.exists():
            old = p.with_name(f"{TMP_PREFIX}old-{p.name}")
            os.replace(p, old)
            os.replace(tmp, p)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, p)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
