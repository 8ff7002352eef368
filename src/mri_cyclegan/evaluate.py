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


def score_all(preds: Sequence[np.ndarray], refs: Sequence[np.ndarray], masks: Sequence[np.ndarray | None], normalize: bool = False) -> list[dict[str, float]]:
    """Metrics per image; ``normalize=True`` re-maps each image's in-mask percentiles to [0, 1] first."""
    return [score(p, r, m, normalize) for p, r, m in zip(preds, refs, masks)]


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


# ---------------------------------------------------------------------------- files
def load_unit(path: Path, is_mask: bool = False) -> list[tuple[str, np.ndarray]]:
    """An image -> one [0, 1] array; a volume -> its canonical axial slices. Intensities are mapped to [0, 1]
    with the 0.5/99.5 percentiles of the whole image (volume), the same rule for prediction, reference and input."""
    from .data.preprocess import normalize, robust_range
    from .io import is_nifti, read_image, read_nifti
    from .io.nifti import slices, to_canonical

    if is_nifti(path):
        vol = read_nifti(path)
        data = to_canonical(vol.data, vol.affine)
        arrs = slices(data, "axial")
        names = [f"{path.name}:{k}" for k in range(len(arrs))]
    else:
        arr, _ = read_image(path)
        arrs, names = [arr], [path.name]
        data = arr
    if is_mask:
        return [(n, a > 0.5 * float(np.max(data))) for n, a in zip(names, arrs)]
    lo, hi = robust_range(data)
    return [(n, (normalize(a, lo, hi) + 1) / 2) for n, a in zip(names, arrs)]


def evaluate_paths(pred: str | Path, ref: str | Path, out: str | Path, mask: str | Path | None = None,
                   input_path: str | Path | None = None, model: str | Path | None = None, direction: str = "t1_to_t2",
                   n_examples: int = 4) -> dict:
    """Score predictions against references (and the baselines when the inputs are given); write the report."""
    from .baselines import apply_lut, inverse_histogram_lut
    from .errors import InputError
    from .io import list_inputs
    from .metrics import foreground_mask
    from .report import DirectionResult, Example, write_report

    pairs = match_pairs(list_inputs(pred, "--pred"), list_inputs(ref, "--ref"))
    mask_files = dict(match_pairs([p for p, _ in pairs], list_inputs(mask, "--mask"))) if mask else {}
    input_files = dict(match_pairs([p for p, _ in pairs], list_inputs(input_path, "--input"))) if input_path else {}
    items = []  # (name, pred, ref, mask, input)
    for p, r in pairs:
        ps, rs = load_unit(p), load_unit(r)
        if len(ps) != len(rs) or any(a.shape != b.shape for (_, a), (_, b) in zip(ps, rs)):
            raise InputError(f"prediction {p} and reference {r} differ in shape; translate with 'mri-cyclegan translate' to keep sizes")
        ms = load_unit(mask_files[p], is_mask=True) if p in mask_files else [(n, foreground_mask(a)) for n, a in rs]
        ins = load_unit(input_files[p]) if p in input_files else [(n, None) for n, _ in rs]
        if len(ms) != len(rs) or len(ins) != len(rs):
            raise InputError(f"mask or input for {p} has another number of slices than the prediction ({len(ms)}/{len(ins)} vs {len(rs)})")
        for (n, a), (_, b), (_, m), (_, i) in zip(ps, rs, ms, ins):
            if m.shape != a.shape:
                raise InputError(f"mask for {p} has shape {m.shape}, image has {a.shape}")
            if m.sum() >= max(16, 0.01 * m.size):  # skip (near) empty slices of volumes
                items.append((n, a, b, m, i))
    if not items:
        raise InputError("no image pair has a usable mask (>= 1% of pixels); check --mask")
    refs, masks = [b for _, _, b, _, _ in items], [m for _, _, _, m, _ in items]
    results = {"model": score_all([a for _, a, *_ in items], refs, masks)}
    notes = ["Metrics inside the brain mask" + (" (given)" if mask else " (automatic: reference > 10% of its range, holes filled)")
             + "; each image (volume) mapped to [0, 1] by its own 0.5/99.5 percentiles; data range 1; "
             "SSIM with an 11x11 Gaussian window (sigma 1.5) averaged over the mask."]
    if input_files:
        inputs = [i for *_, i in items]
        lut = _model_lut(model, direction) if model else None
        if lut is None:
            lut = inverse_histogram_lut(np.concatenate([i.ravel() for i in inputs]) * 2 - 1, np.concatenate([b.ravel() for b in refs]) * 2 - 1)
            notes.append("Inverse histogram baseline matched to the reference images' histogram (no --model with a prior given): an optimistic baseline.")
        results["identity"] = score_all(inputs, refs, masks)
        results["inverse_histogram"] = score_all([(apply_lut(i * 2 - 1, lut) + 1) / 2 for i in inputs], refs, masks)
    else:
        notes.append("No --input given: the identity and inverse-histogram baselines need the source images.")
    per_image = [{"name": n, **{meth: results[meth][k] for meth in results}} for k, (n, *_) in enumerate(items)]
    step = max(1, len(items) // max(1, n_examples))
    examples = [Example(n, i if i is not None else np.zeros_like(a), a, b, m) for n, a, b, m, i in items[::step][:n_examples]]
    res = DirectionResult(direction, {k: summarize(v) for k, v in results.items()}, per_image, examples)
    write_report(out, [res], notes=notes, run_dir=_run_dir(model))
    return res.summaries


def _model_lut(model: str | Path, direction: str) -> np.ndarray | None:
    from .training.checkpoint import load_checkpoint

    tensors, _, _ = load_checkpoint(model)
    key = f"model/g_{direction}.prior.lut"
    return tensors[key].numpy() if key in tensors else None


def _run_dir(model: str | Path | None) -> Path | None:
    if model is None:
        return None
    p = Path(model)
    return p if p.is_dir() else p.parent.parent
