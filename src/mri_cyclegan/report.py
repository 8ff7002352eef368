"""A self-contained HTML report (images embedded as base64 PNG) and metrics.json."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .io.atomic import atomic_path
from .run_folder import RunLayout
from .viewer import ERROR_VMAX, Viewer, display_max, viewer_html, viewer_script

METHOD_LABELS = {"model": "CycleGAN (this model)", "identity": "identity (input as output)", "inverse_histogram": "inverse histogram matching"}


@dataclass
class Example:
    name: str
    input: np.ndarray  # [0, 1]
    prediction: np.ndarray
    reference: np.ndarray
    mask: np.ndarray
    uncertainty: np.ndarray | None = None  # [0, 1] units of the prediction


@dataclass
class DirectionResult:
    direction: str  # a Direction ("t1_to_t2" / "t2_to_t1"), or free text
    summaries: dict[str, dict[str, float]]  # method -> {"psnr", "ssim", "mae", "*_std", "n"}
    per_image: list[dict[str, Any]] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    per_volume: list[dict[str, Any]] = field(default_factory=list)
    uncertainty: dict[str, Any] | None = None  # metrics.uncertainty_scores over all voxels, and "per_image" rows
    viewers: list[Viewer] = field(default_factory=list)


def _png_b64(arr: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _gray(x: np.ndarray, scale: int = 1) -> np.ndarray:
    a = np.clip(np.rint(np.asarray(x, np.float64) * 255), 0, 255).astype(np.uint8)
    return np.kron(a, np.ones((scale, scale), np.uint8)) if scale > 1 else a


def _error_rgb(err: np.ndarray, mask: np.ndarray, vmax: float = ERROR_VMAX, scale: int = 1) -> np.ndarray:
    import matplotlib

    cmap = matplotlib.colormaps["magma"]
    rgb = (cmap(np.clip(err / vmax, 0, 1))[..., :3] * 255).astype(np.uint8)
    rgb[~mask] = 0
    return np.kron(rgb, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else rgb


def _img(arr: np.ndarray, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{_png_b64(arr)}">'


def _file_img(path: Path, alt: str) -> str:
    mime = "image/gif" if path.suffix == ".gif" else "image/png"
    return f'<img alt="{html.escape(alt)}" src="data:{mime};base64,{base64.b64encode(path.read_bytes()).decode("ascii")}">'


COLUMNS = (  # key, header, format, higher is better
    ("psnr", "PSNR (dB) ↑", "{:.2f}", True), ("ssim", "SSIM ↑", "{:.4f}", True), ("mae", "MAE ↓", "{:.4f}", False),
    ("psnr_3d", "3D PSNR (dB) ↑", "{:.2f}", True), ("ssim_3d", "3D SSIM ↑", "{:.4f}", True), ("mae_3d", "3D MAE ↓", "{:.4f}", False),
    ("tp_error", "through-plane error ↓", "{:.4f}", False), ("tp_ratio", "through-plane ratio ↓", "{:.3f}", False),
)


def _table(res: DirectionResult) -> str:
    cols = [c for c in COLUMNS if all(c[0] in s for s in res.summaries.values())]
    best = {k: (max if hi else min)(s[k] for s in res.summaries.values()) for k, _, _, hi in cols}
    rows = []
    for method, s in res.summaries.items():
        cells = []
        for k, _, fmt, _ in cols:
            text = f"{fmt.format(s[k])} ± {fmt.format(s[k + '_std'])}"
            cells.append(f"<td><b>{text}</b></td>" if s[k] == best[k] else f"<td>{text}</td>")
        n = f"{int(s['n'])}" + (f" ({int(s['n_volumes'])} vol.)" if "n_volumes" in s else "")
        rows.append(f"<tr><th>{html.escape(METHOD_LABELS.get(method, method))}</th>{''.join(cells)}<td>{n}</td></tr>")
    head = "<tr><th>method</th>" + "".join(f"<th>{h}</th>" for _, h, _, _ in cols) + "<th>slices</th></tr>"
    return f'<table class="metrics" data-direction="{html.escape(res.direction)}">{head}{"".join(rows)}</table>'


def _examples(res: DirectionResult) -> str:
    with_unc = any(ex.uncertainty is not None for ex in res.examples)
    vmax = max((display_max(ex.uncertainty[ex.mask]) for ex in res.examples if ex.uncertainty is not None and ex.mask.any()), default=1.0)
    out = ['<table class="examples"><tr><th>view (native resolution)</th><th>input</th><th>prediction</th><th>reference</th>'
           f'<th>|error| (0–{ERROR_VMAX})</th>' + (f"<th>uncertainty (0–{vmax:.3g})</th>" if with_unc else "") + "</tr>"]
    for ex in res.examples:
        err = np.abs(ex.prediction - ex.reference)
        unc = f"<td>{_img(_error_rgb(ex.uncertainty, ex.mask, vmax), 'uncertainty')}</td>" if ex.uncertainty is not None else ""
        out.append(
            f"<tr><td>{html.escape(ex.name)}</td><td>{_img(_gray(ex.input), 'input')}</td><td>{_img(_gray(ex.prediction), 'prediction')}</td>"
            f"<td>{_img(_gray(ex.reference), 'reference')}</td><td>{_img(_error_rgb(err, ex.mask), 'absolute error')}</td>{unc}</tr>"
        )
    out.append("</table>")
    return "".join(out)


def _uncertainty_section(res: DirectionResult) -> str:
    """AUROC / rho over all voxels, per file, and the reliability curve as a small table."""
    u = res.uncertainty
    if not u:
        return ""
    rel = u["reliability"]
    cells = "".join(f"<td>{e:.3f}</td>" for e in rel["mean_error"])
    ucells = "".join(f"<td>{m:.3f}</td>" for m in rel["mean_uncertainty"])
    per = "".join(f"<tr><td>{html.escape(r['name'])}</td><td>{r['auroc']:.3f}</td><td>{r['rho']:.3f}</td><td>{100 * r['error_fraction']:.1f} %</td></tr>"
                  for r in u["per_image"])
    return (f"<h3>Uncertainty</h3><table class='uncertainty'><tr><th></th><th>AUROC (|error| &gt; {u['threshold']})</th><th>Spearman ρ</th>"
            f"<th>voxels with |error| &gt; {u['threshold']}</th></tr><tr><th>all voxels</th><td>{u['auroc']:.3f}</td><td>{u['rho']:.3f}</td>"
            f"<td>{100 * u['error_fraction']:.1f} %</td></tr>{per}</table>"
            f"<p class='note'>Reliability: mean |error| in each tenth of the voxels, from the least to the most uncertain "
            f"(it should rise from left to right).</p><table class='reliability'><tr><th>mean uncertainty</th>{ucells}</tr>"
            f"<tr><th>mean |error|</th>{cells}</tr></table>")


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:center}
th{background:#f4f4f4}img{image-rendering:pixelated;max-width:100%}.note{color:#555;font-size:90%}
.viewer canvas{image-rendering:pixelated;cursor:crosshair}.viewer td{padding:2px}.viewer .controls label{margin-right:1.5em}"""


def write_report(out_dir: str | Path, results: list[DirectionResult], title: str = "mri-cyclegan evaluation",
                 notes: list[str] | None = None, run_dir: str | Path | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``metrics.json`` and a self-contained ``report.html`` into ``out_dir``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {r.direction: {**r.summaries, "per_image": r.per_image, **({"per_volume": r.per_volume} if r.per_volume else {}),
                                             **({"uncertainty": r.uncertainty} if r.uncertainty else {})}
                               for r in results}
    metrics.update(extra or {})
    _atomic_write(out / "metrics.json", json.dumps(metrics, indent=2))
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for n in notes or []:
        parts.append(f'<p class="note">{html.escape(n)}</p>')
    viewers: list[Viewer] = []
    for r in results:
        parts.append(f"<h2>{html.escape(r.direction.replace('_', ' '))}</h2>{_table(r)}")
        parts.append(_uncertainty_section(r))
        if r.examples:
            parts.append(_examples(r))
        for v in r.viewers:
            parts.append(viewer_html(v, f"{r.direction}-{len(viewers)}"))
            viewers.append(v)
    if viewers:
        parts.append(f"<script>{viewer_script()}</script>")
    if run_dir is not None:
        rd = RunLayout(Path(run_dir))
        if rd[RunLayout.LOSSES_PNG].is_file():
            parts.append(f"<h2>Training losses</h2>{_file_img(rd[RunLayout.LOSSES_PNG], 'loss curves')}")
        drift = rd[RunLayout.FAITHFULNESS_CSV]
        if drift.is_file():
            parts.append(_drift_table(drift))
        if rd[RunLayout.PROGRESS_GIF].is_file():
            parts.append("<h2>Progress across epochs</h2><p class='note'>Each row: real T1 → fake T2 → reconstructed T1 | "
                         f"real T2 → fake T1 → reconstructed T2.</p>{_file_img(rd[RunLayout.PROGRESS_GIF], 'progress across epochs')}")
    parts.append("</body></html>")
    path = out / "report.html"
    _atomic_write(path, "\n".join(parts))
    return path


def _drift_table(path: Path) -> str:
    """The training run's safety net (faithfulness.csv): per epoch, how far each direction moved its tissue classes
    and the brain outline from the lookup table; rows past the limits are marked."""
    import csv

    from .faithfulness import BOUNDARY_LIMIT, TISSUE_LIMIT, UNCHANGED

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return ""
    cols = [k for k in rows[0] if k not in ("epoch", "step")]
    head = "".join(f"<th>{html.escape(c.replace('_to_', '→').replace('_', ' '))}</th>" for c in cols)

    def limit(col: str) -> float:  # the mean change over the head has none: it tells the table itself from a model
        return float("inf") if col.endswith("change") else BOUNDARY_LIMIT if col.endswith("boundary") else TISSUE_LIMIT

    body = []
    for r in rows:
        value = {c: float(r[c]) if r.get(c) else float("nan") for c in cols}  # a run resumed by a newer version: columns added
        over = [c for c in cols if value[c] > limit(c)]
        text = {c: "–" if np.isnan(value[c]) else f"{value[c]:.{4 if c.endswith('change') else 3}f}" for c in cols}
        cells = "".join(f"<td{' style=background:#fdd' if c in over else ''}>{text[c]}</td>" for c in cols)
        body.append(f"<tr><td>{html.escape(r['epoch'])}</td>{cells}</tr>")
    return (f"<h2>Faithfulness to the lookup table during training</h2><p class='note'>How far each generator moved each tissue "
            f"class's mean and the brain outline from the lookup table's translation, and its mean absolute change over the head "
            f"([0, 1] units; under {UNCHANGED} the model is the table itself); red: past the limits "
            f"({TISSUE_LIMIT} per tissue, {BOUNDARY_LIMIT} at the outline), where the lookup table is the safer choice.</p>"
            f"<table><tr><th>epoch</th>{head}</tr>{''.join(body)}</table>")


def _atomic_write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
