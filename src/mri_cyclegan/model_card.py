"""MODEL_CARD.md in every run folder: what the model saw, how it was trained, how it scored, what not to use it for.
Rewritten after every epoch (a stopped run still has one) and at the end."""

from __future__ import annotations

import platform
from pathlib import Path

from . import __version__
from .io.atomic import atomic_path
from .run_folder import RunLayout

WARNING = (
    "**Not for diagnosis.** This model synthesises one MRI contrast from another. A CycleGAN trained on unpaired "
    "data matches the *distribution* of the target contrast: it can hallucinate structures that are not there and "
    "erase or alter pathology (lesions, tumours, atrophy) that it saw rarely or never, most of all when the two "
    "training sets differ in tissue proportions or disease. Synthetic images must not replace an acquired scan "
    "for clinical decisions; check them against acquired images (`mri-cyclegan evaluate`) before any research use."
)


def _set_rows(name: str, s: dict) -> list[str]:
    sp = s.get("spacing_mm")
    spacing = ("— (2D images: pixel grid)" if not sp else f"{sp[0]:g} mm" if sp[0] == sp[1] else f"{sp[0]:g}–{sp[1]:g} mm")
    window = f"{s['intensity_window'][0]:.4g}–{s['intensity_window'][1]:.4g}" if s.get("intensity_window") else "—"
    shapes = ", ".join("×".join(map(str, x)) for x in s.get("shapes", []))
    return [f"| {name} | {s['files']} | {s['slices']} | {', '.join(s.get('formats', []))} | {shapes} | {spacing} | {window} |"]


def write_model_card(run_dir: str | Path, config, t1_summary: dict, t2_summary: dict, epoch: int, step: int, seconds: float,
                     validation: list[dict[str, float]] | None = None, paired: bool = True, device: str = "", sources: tuple[str, str] = ("", ""),
                     drifts: dict | None = None, pairs_summary: dict | None = None) -> Path:
    d = Path(run_dir)
    tc, mc, dc = config.train, config.model, config.data
    lines = [
        "# Model card: mri-cyclegan T1w ↔ T2w",
        "",
        WARNING,
        "",
        "## Model",
        f"- CycleGAN, {mc.generator} generator (ngf {mc.ngf}"
        + (f", {mc.n_blocks} residual blocks" if mc.generator == "resnet" else "") + f"), PatchGAN discriminator (ndf {mc.ndf}, "
        f"{mc.n_layers_d} layers), intensity prior: {mc.prior}"
        + (f"; translations held within {mc.residual_bound:g} of the lookup table's (model units, the window is 2 wide; "
           "--residual-bound)." if mc.prior != "none" and mc.residual_bound > 0 else "."),
        f"- Input: 2D slices along the {dc.axis} axis" + (f" with {dc.context_slices} context slices (2.5D)" if dc.context_slices > 1 else "")
        + (f", in-plane spacing {dc.spacing:g} mm" if dc.spacing else "") + (f", squeezed into {dc.image_size}²" if dc.image_size else ", native resolution")
        + f"; intensities: each file's robust window mapped to [-1, 1] (bottom: {dc.intensity_floor}).",
        f"- mri-cyclegan {__version__}; checkpoints in `checkpoints/` (`last`, `best` when validated), full configuration in `config.json`.",
        "",
        "## Training data",
        "| set | files | usable slices | formats | shapes (first) | in-plane spacing | intensity window (raw) |",
        "|---|---|---|---|---|---|---|",
        *_set_rows(f"T1 `{sources[0]}`" if sources[0] else "T1", t1_summary),
        *_set_rows(f"T2 `{sources[1]}`" if sources[1] else "T2", t2_summary),
        *(_set_rows("co-registered pairs (T1 side)", pairs_summary) if pairs_summary else []),
        "",
        "The two sets are unpaired. The model learns to match the target set's intensity distribution, so its outputs "
        "inherit that set's tissue proportions and contrast (scanner, sequence, field strength): outside them, expect errors."
        + (f" Every batch also held {tc.paired_batch} patch(es) of {pairs_summary['files']} co-registered T1/T2 pair(s), each "
           f"translation of them held to its pair's truth (L1 × {tc.lambda_paired:g}): semi-supervised." if pairs_summary else ""),
        "",
        "## Training",
        f"- {epoch} epoch(s), {step} iterations, batch {tc.batch_size}, Adam lr {tc.lr:g} (β1 {tc.beta1}), λ_cycle {tc.lambda_cycle:g}, "
        f"identity {tc.lambda_identity:g}·λ, {tc.gan_loss} loss, image pool {tc.pool_size}, seed {tc.seed}"
        + (f"; the weights are a running average of the generators' (decay {tc.ema_decay:g})." if tc.ema_decay else "."),
        f"- Held to the input: anchor on the lookup table {tc.lambda_anchor:g} (σ {tc.anchor_sigma:g} px, outline rim × {tc.anchor_rim:g}), "
        f"structure {tc.lambda_structure:g}"
        + (f", PatchNCE {tc.lambda_nce:g}" if tc.lambda_nce else "")
        + ("; tissue-balanced discriminators." if tc.balance_d else "."),
        f"- Training time: {seconds / 60:.1f} min on {device or 'unknown device'} ({platform.machine()}).",
    ]
    lines += ["", "## Validation"]
    if validation and not paired:
        best = min(validation, key=lambda r: r["mean_proxy"])
        lines += [
            "**Unpaired proxy only** (`--val-t1/--val-t2` file names did not pair up): cycle error |x − G'(G(x))| and the "
            "1-Wasserstein distance between translated and real held-out intensities, both in [0, 1] units, lower is better. "
            "A proxy cannot see hallucinated or erased structures: it is not a quality score.",
            "",
            "| epoch | T1→T2 cycle | T1→T2 histogram | T2→T1 cycle | T2→T1 histogram |",
            "|---|---|---|---|---|",
        ]
        for tag, r in (("best", best), ("last", validation[-1])):
            lines.append(f"| {int(r['epoch'])} ({tag}) | {r['t1_to_t2_cycle_mae']:.4f} | {r['t1_to_t2_hist_w1']:.4f} | "
                         f"{r['t2_to_t1_cycle_mae']:.4f} | {r['t2_to_t1_hist_w1']:.4f} |")
    elif validation:
        best = max(validation, key=lambda r: r["mean_psnr"])
        last = validation[-1]
        lines += [
            "Paired validation files (`--val-t1/--val-t2`), each image mapped to [0, 1] by its own 0.5/99.5 percentiles, "
            "automatic foreground mask of the reference, native resolution (`val.csv`, `val.png`).",
            "",
            "| epoch | T1→T2 PSNR | T1→T2 SSIM | T1→T2 MAE | T2→T1 PSNR | T2→T1 SSIM | T2→T1 MAE |",
            "|---|---|---|---|---|---|---|",
        ]
        for tag, r in (("best", best), ("last", last)):
            lines.append(f"| {int(r['epoch'])} ({tag}) | {r['t1_to_t2_psnr']:.2f} | {r['t1_to_t2_ssim']:.4f} | {r['t1_to_t2_mae']:.4f} | "
                         f"{r['t2_to_t1_psnr']:.2f} | {r['t2_to_t1_ssim']:.4f} | {r['t2_to_t1_mae']:.4f} |")
    else:
        lines.append("None during training (no `--val-t1/--val-t2`). Score translations against acquired images with "
                     "`mri-cyclegan evaluate` (or `evaluate --all-checkpoints`) before relying on them.")
    if drifts:
        from .faithfulness import BOUNDARY_LIMIT, TISSUE_LIMIT, UNCHANGED, verdict

        lines += [
            "",
            "## Faithfulness to the lookup table (safety net, no ground truth needed)",
            f"How far the model moved each tissue class's mean, and the brain outline, from the lookup table's translation of the "
            f"same training slices, and its mean absolute change over the head (under {UNCHANGED}: the table itself) ([0, 1] units; limits {TISSUE_LIMIT} per tissue, {BOUNDARY_LIMIT} at the outline; every epoch in "
            "`faithfulness.csv`). The lookup table keeps tissue means within 0.01 on cohorts that differ.",
            "",
            "| direction | " + " | ".join(k.upper() for k in next(iter(drifts.values())).tissue) + " | outline | mean change | within limits |",
            "|---|---|---|---|---|---|---|",
        ]
        for direction, d_ in drifts.items():
            lines.append(f"| {direction} | " + " | ".join(f"{v:.3f}" for v in d_.tissue.values()) + f" | {d_.boundary:.3f} | {d_.change:.4f} | "
                         f"{'yes' if d_.within_limits else '**no**'} |")
        lines += ["", f"**Verdict:** {verdict(drifts, pairs_summary['files'] if pairs_summary else 0, mc.residual_bound)[1]}."]
    lines += [
        "",
        "## Intended use",
        "Research: filling in a missing contrast for pipelines that need both (registration, segmentation inputs, "
        "visual comparison), with the quality measured on data like the user's own. Not: diagnosis, lesion detection or "
        "measurement, or any decision about a patient.",
        "",
    ]
    path = RunLayout(d)[RunLayout.MODEL_CARD]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
    return path
