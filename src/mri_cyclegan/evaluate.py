"""Scoring translations against references at the reference's own resolution, next to the identity and
inverse-histogram baselines.

Protocol (stated in every report): each image or whole volume is mapped to [0, 1] by its own 0.5/99.5
percentiles; metrics inside the mask, data range 1. 2D images are scored at their size. Volumes are scored
as whole 3D volumes (3D PSNR / SSIM with a 3D Gaussian window / MAE in the 3D mask), per slice along the
translation axis, and for through-plane consistency (:func:`mri_cyclegan.metrics.through_plane`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .io.files import match_pairs  # noqa: F401 -- pairing by file name: one definition, in io
from .io.geometry import AXES
from .directions import Direction
from .metrics import ERROR_THRESHOLD, SLICE_METRICS, VOLUME_METRICS, Scored, score, to_unit, unit_magnitude



def summarize(per_image: Sequence[dict[str, float]], per_volume: Sequence[dict[str, float]] = ()) -> dict[str, float]:
    """Mean and standard deviation of each metric: per image/slice, and per volume when there are volumes."""
    out: dict[str, float] = {}
    for rows, keys in ((per_image, SLICE_METRICS), (per_volume, VOLUME_METRICS)):
        for k in keys:
            if rows and k in rows[0]:
                v = np.array([r[k] for r in rows], dtype=np.float64)
                out[k] = float(v.mean())
                out[f"{k}_std"] = float(v.std())
    out["n"] = len(per_image)
    if per_volume:
        out["n_volumes"] = len(per_volume)
    return out


def orthogonal_views(volume: np.ndarray, mask: np.ndarray) -> list[tuple[str, tuple[slice | int, ...]]]:
    """Axial, coronal and sagittal slices through the mask's centre of a canonical (RAS) volume (the sagittal one
    off the midline), each rotated so that up is anterior (axial) or superior (coronal, sagittal)."""
    centre = [int(round(c)) for c in np.argwhere(mask).mean(0)] if mask.any() else [s // 2 for s in volume.shape]
    if mask.any():  # sagittal: a quarter of the way into the left hemisphere, not the midline (all fissure)
        xs = np.flatnonzero(mask.any((1, 2)))
        centre[0] = int(round(centre[0] - 0.25 * (centre[0] - xs[0])))
    return [(f"{name} {centre[ax]}", tuple(centre[ax] if i == ax else slice(None) for i in range(3))) for name, ax in AXES.items()][::-1]


def view(volume: np.ndarray, index: tuple) -> np.ndarray:
    return np.rot90(volume[index])


# ---------------------------------------------------------------------------- files
def load_canonical(path: Path):
    """Raw data of an image (2D) or volume (3D, in canonical RAS order) and the file's Volume."""
    from .io import read_any
    from .io.geometry import to_canonical

    vol = read_any(path)
    data = vol.data if vol.data.ndim == 2 else to_canonical(vol.data, vol.affine)
    return data, vol


def canonical_mask(path: Path) -> np.ndarray:
    data, _ = load_canonical(path)
    return data > 0.5 * float(np.max(data))


class EvaluationSet:
    """Collects scored files per method, and a few example views, for one direction."""

    def __init__(self, direction: str, n_examples: int = 4, n_viewers: int = 2) -> None:
        self.direction = direction
        self.n_examples = n_examples
        self.n_viewers = n_viewers
        self.viewers: list = []
        self.rows: dict[str, list[dict]] = {}
        self.volume_rows: dict[str, list[dict]] = {}
        self.examples: list = []
        self.uncertainty_rows: list[dict] = []
        self._pooled: list[tuple[np.ndarray, np.ndarray]] = []

    def add_uncertainty(self, name: str, uncertainty: np.ndarray, error: np.ndarray, mask: np.ndarray) -> None:
        """Score one file's uncertainty map against its |error| (both in [0, 1] units) inside ``mask``."""
        from .metrics import uncertainty_scores

        sc = uncertainty_scores(uncertainty, error, mask)
        self.uncertainty_rows.append({"name": name, "auroc": sc["auroc"], "rho": sc["rho"], "error_fraction": sc["error_fraction"]})
        self._pooled.append((np.asarray(uncertainty)[mask].astype(np.float32), np.abs(np.asarray(error)[mask]).astype(np.float32)))

    def uncertainty_summary(self) -> dict | None:
        from .metrics import uncertainty_scores

        if not self._pooled:
            return None
        u = np.concatenate([a for a, _ in self._pooled])
        e = np.concatenate([b for _, b in self._pooled])
        return {**uncertainty_scores(u, e), "per_image": self.uncertainty_rows}

    def add(self, name: str, method: str, scored: Scored) -> None:
        self.rows.setdefault(method, []).extend({"name": name, **r} for r in scored.slices)
        if scored.volume is not None:
            self.volume_rows.setdefault(method, []).append({"name": name, **scored.volume})

    def add_examples(self, name: str, pred: np.ndarray, ref: np.ndarray | None, mask: np.ndarray, inp: np.ndarray | None,
                     uncertainty: np.ndarray | None = None) -> None:
        """Static views (and, for volumes, an interactive viewer) of the first ``n_examples`` files, all [0, 1]."""
        from .report import Example
        from .viewer import Viewer

        if len(self.examples) >= self.n_examples:
            return
        src = inp if inp is not None else np.zeros_like(pred)
        if pred.ndim == 2:
            self.examples.append(Example(name, src, pred, ref, mask, uncertainty))
            return
        if len(self.viewers) < self.n_viewers:
            self.viewers.append(Viewer.of(name, mask, input=inp, prediction=pred, reference=ref, uncertainty=uncertainty))
        for label, idx in orthogonal_views(pred, mask):
            self.examples.append(Example(f"{name} {label}".strip(), view(src, idx), view(pred, idx), view(ref, idx), view(mask, idx),
                                         None if uncertainty is None else view(uncertainty, idx)))

    def result(self):
        from .report import DirectionResult

        summaries = {m: summarize(self.rows[m], self.volume_rows.get(m, ())) for m in self.rows}
        per_image = []
        methods = list(self.rows)
        for k, row in enumerate(self.rows[methods[0]]):
            per_image.append({"name": row["name"], **({"slice": row["slice"]} if "slice" in row else {}),
                              **{m: {x: self.rows[m][k][x] for x in SLICE_METRICS} for m in methods}})
        per_volume = [{"name": r["name"], **{m: {x: self.volume_rows[m][k][x] for x in VOLUME_METRICS} for m in self.volume_rows}}
                      for k, r in enumerate(self.volume_rows.get(methods[0], []))]
        return DirectionResult(self.direction, summaries, per_image, self.examples, per_volume, self.uncertainty_summary(), self.viewers)


PROTOCOL = ("each image (whole volume) mapped to [0, 1] by its own 0.5/99.5 percentiles; data range 1; at the reference's "
            "own resolution; SSIM with a Gaussian window (sigma 1.5, 11 wide; 3D for volumes) averaged over the mask. Volumes: "
            "3D scores over the whole volume, per-slice scores along the translation axis, and through-plane consistency "
            "(mean |slice-to-slice gradient of prediction - of reference| in the mask, and its ratio to the reference's mean gradient).")


def evaluate_paths(pred: str | Path, ref: str | Path, out: str | Path, mask: str | Path | None = None,
                   input_path: str | Path | None = None, model: str | Path | None = None, direction: Direction | str = Direction.T1_TO_T2,
                   n_examples: int = 4, axis: str = "axial", uncertainty: bool = False) -> dict:
    """Score predictions against references (and the baselines when the inputs are given); write the report. With
    ``uncertainty``, each prediction's map (found by name beside it, :func:`mri_cyclegan.uncertainty.uncertainty_path`)
    is scored against the prediction's error (:func:`mri_cyclegan.metrics.uncertainty_scores`)."""
    from .baselines import inverse_histogram_lut, tissue_values
    from .config import DataConfig, ModelConfig
    from .data.preprocess import Preprocessor
    from .errors import InputError
    from .inference import baseline_translation
    from .io import list_inputs
    from .io.geometry import to_canonical
    from .metrics import foreground_mask
    from .report import write_report

    from .uncertainty import is_uncertainty_map

    pairs = match_pairs([f for f in list_inputs(pred, "--pred") if not is_uncertainty_map(f)], list_inputs(ref, "--ref"))
    maps = _uncertainty_maps([p for p, _ in pairs]) if uncertainty else {}
    mask_files = dict(match_pairs([p for p, _ in pairs], list_inputs(mask, "--mask"))) if mask else {}
    input_files = dict(match_pairs([p for p, _ in pairs], list_inputs(input_path, "--input"))) if input_path else {}
    config, lut = _model_info(model, direction) if model else (None, None)
    pre = Preprocessor(config.data if config else DataConfig(axis=axis))
    ax = AXES[axis]
    notes = ["Metrics inside the brain mask" + (" (given)" if mask else " (automatic: reference > 10% of its range, holes filled)") + "; " + PROTOCOL]
    if input_files and lut is None:  # baseline from the references' own histogram: optimistic
        src, tgt = [], []
        for p, r in pairs:
            if p in input_files:
                src.extend(pre.forward(load_canonical(input_files[p])[1])[0])
                tgt.extend(pre.forward(load_canonical(r)[1])[0])
        lut = inverse_histogram_lut(tissue_values(src), tissue_values(tgt))
        notes.append("Inverse histogram baseline matched to the reference images' histogram (no --model with a prior given): an optimistic baseline.")
    if not input_files:
        notes.append("No --input given: the identity and inverse-histogram baselines need the source images.")
    ev = EvaluationSet(direction, n_examples)
    usable = 0
    for p, r in pairs:
        pd, _ = load_canonical(p)
        rd, _ = load_canonical(r)
        if pd.shape != rd.shape:
            raise InputError(f"prediction {p} ({pd.shape}) and reference {r} ({rd.shape}) differ in shape; "
                             "translate with 'mri-cyclegan translate' to keep sizes")
        rd_unit = to_unit(rd)
        m = canonical_mask(mask_files[p]) if p in mask_files else foreground_mask(rd_unit)
        if m.shape != rd.shape:
            raise InputError(f"mask for {p} has shape {m.shape}, image has {rd.shape}")
        if m.sum() < max(16, 0.01 * m.size):
            continue
        usable += 1
        pred_unit = to_unit(pd)
        ev.add(p.name, "model", score(pred_unit, rd_unit, m, ax))
        inp_unit = None
        if p in input_files:
            idata, ivol = load_canonical(input_files[p])
            if idata.shape != rd.shape:
                raise InputError(f"input {input_files[p]} ({idata.shape}) and reference {r} ({rd.shape}) differ in shape")
            inp_unit = to_unit(idata)
            ev.add(p.name, "identity", score(inp_unit, rd_unit, m, ax))
            base = baseline_translation(ivol, lut, pre, unmix_outline=(config.model if config else ModelConfig()).unmix_outline)
            base = base if base.ndim == 2 else to_canonical(base, ivol.affine)
            ev.add(p.name, "inverse_histogram", score(to_unit(base), rd_unit, m, ax))
        unc_unit = None
        if p in maps:
            unc_unit = _unit_uncertainty(maps[p], pd)
            if unc_unit.shape != pd.shape:
                raise InputError(f"uncertainty map {maps[p]} ({unc_unit.shape}) and prediction {p} ({pd.shape}) differ in shape")
            ev.add_uncertainty(p.name, unc_unit, np.abs(pred_unit - rd_unit), m)
        ev.add_examples(p.name, pred_unit, rd_unit, m, inp_unit, unc_unit)
    if not usable:
        raise InputError("no image pair has a usable mask (>= 1% of pixels); check --mask")
    res = ev.result()
    if uncertainty:
        notes.append(UNCERTAINTY_PROTOCOL)
    write_report(out, [res], notes=notes, run_dir=_run_dir(model))
    return res.summaries


UNCERTAINTY_PROTOCOL = ("Uncertainty: each map divided by its prediction's 0.5/99.5 percentile window (the [0, 1] scale of the "
                        f"scores); AUROC for finding the voxels in the mask whose |error| exceeds {ERROR_THRESHOLD}, Spearman rho between "
                        "uncertainty and |error|, and the reliability curve (mean |error| in each tenth of the voxels, "
                        "ordered by uncertainty); over all scored voxels together and per file.")


def _uncertainty_maps(preds: Sequence[Path]) -> dict[Path, Path]:
    """Each prediction's uncertainty map, found by name beside it; a missing one is an input error."""
    from .errors import InputError
    from .uncertainty import uncertainty_path

    found = {p: uncertainty_path(p) for p in preds}
    missing = [p for p, m in found.items() if not m.is_file()]
    if missing:
        raise InputError(f"--uncertainty: no map {found[missing[0]]} beside {missing[0]} ({len(missing)} missing); "
                         "translate with --uncertainty, or leave --uncertainty out")
    return found


def _unit_uncertainty(path: Path, pred_raw: np.ndarray) -> np.ndarray:
    """An uncertainty map file (canonical order) in the [0, 1] units of its prediction's scores."""
    u, _ = load_canonical(path)
    return unit_magnitude(u, pred_raw)


def _model_info(model: str | Path, direction: str):
    """The model's config and, if it has a histogram prior, its lookup table for ``direction``."""
    from .checkpoints import load_model

    cyclegan, config = load_model(model)
    prior = cyclegan.generator(direction).prior
    return config, (prior.lut.detach().numpy().copy() if prior is not None else None)


def _run_dir(model: str | Path | None) -> Path | None:
    """The run folder ``model`` names or belongs to (RUN/checkpoints/X.safetensors, with RUN/config.json), or None:
    the report embeds files of that run only, never of a folder that merely lies above a checkpoint file."""
    if model is None:
        return None
    from .run_folder import RunLayout

    p = Path(model)
    if p.is_dir():
        return p if RunLayout(p)[RunLayout.CONFIG].is_file() else None
    layout = RunLayout.of_checkpoint(p)
    return layout.root if layout else None
