"""Scoring translations against references, with the identity and inverse-histogram baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .metrics import score

METRICS = ("psnr", "ssim", "mae")


def summarize(per_image: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation of each metric."""
    out: dict[str, float] = {}
    for k in METRICS:
        v = np.array([r[k] for r in per_image], dtype=np.float64)
        out[k] = float(v.mean())
        out[f"{k}_std"] = float(v.std())
    out["n"] = len(per_image)
    return out


def score_all(preds: Sequence[np.ndarray], refs: Sequence[np.ndarray], masks: Sequence[np.ndarray | None]) -> list[dict[str, float]]:
    return [score(p, r, m) for p, r, m in zip(preds, refs, masks)]


def match_pairs(pred_files: Sequence[Path], ref_files: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Pair files by name (extension ignored, a trailing '_fake'/'_pred' tolerated)."""
    from .errors import InputError

    def key(p: Path) -> str:
        name = p.name.lower()
        for ext in (".nii.gz", ".nii", p.suffix.lower()):
            if ext and name.endswith(ext):
                name = name[: -len(ext)]
                break
        for tail in ("_fake", "_pred", "_translated"):
            name = name.removesuffix(tail)
        return name

    if len(pred_files) == 1 and len(ref_files) == 1:
        return [(pred_files[0], ref_files[0])]
    refs = {key(r): r for r in ref_files}
    pairs = [(p, refs[key(p)]) for p in pred_files if key(p) in refs]
    if not pairs:
        raise InputError("no prediction matches a reference by file name; name them alike (e.g. pred/slice_01.png and ref/slice_01.png)")
    return pairs
