"""The safety net: how far a trained generator moved away from the lookup table (its prior), measured without ground
truth on the source contrast's own slices.

For each tissue class of the source (CSF, GM, WM: the 3-class mixture the prior is built on) the mean of the model's
translation is compared with the mean of the lookup table's translation of the same pixels; and in a 3-pixel rim
inside the head's outline (where CSF meets air: the bright rim of T2; :func:`~mri_cyclegan.losses.rim_of`, the
training anchor's definition) the mean absolute difference; and over the whole head the mean absolute change, which
tells a model whose translations are its lookup table's (training found nothing to change) from one that added
detail. All in [0, 1] units (model space / 2). The lookup table keeps every tissue mean within 0.01 of the truth on
cohorts that differ (``benchmarks/prior_robustness.py``), so a model that moved a tissue class by more than
:data:`TISSUE_LIMIT` has moved it away from the truth, whatever it looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .directions import Contrast

TISSUE_LIMIT = 0.05  # largest tolerated move of a tissue class mean, [0, 1] units
BOUNDARY_LIMIT = 0.05  # largest tolerated mean move in the rim inside the head outline: default models move it by <= 0.045 (demo ~0.01); runs that moved it by 0.062-0.109 lost 0.8-3.4 dB to the table (docs/faithfulness.md)
RIM = 3  # pixels
UNCHANGED = 0.002  # a mean absolute change below this (half an 8-bit grey level on [0, 1]) is the lookup table itself

CLASS_NAMES = {Contrast.T1: ("csf", "gm", "wm"), Contrast.T2: ("wm", "gm", "csf")}  # source classes sorted by intensity


@dataclass(frozen=True)
class Drift:
    """How far one generator moved from the lookup table; ``tissue`` per class name (mean move), ``boundary`` (mean
    absolute move in the rim inside the outline), ``change`` (mean absolute move over the head); [0, 1] units."""

    tissue: dict[str, float]
    boundary: float
    change: float

    @property
    def worst(self) -> tuple[str, float]:
        name = max(self.tissue, key=lambda k: self.tissue[k])
        return name, self.tissue[name]

    @property
    def within_limits(self) -> bool:
        return self.worst[1] <= TISSUE_LIMIT and self.boundary <= BOUNDARY_LIMIT

    def as_row(self, prefix: str) -> dict[str, float]:
        return {**{f"{prefix}_{k}": v for k, v in self.tissue.items()}, f"{prefix}_boundary": self.boundary, f"{prefix}_change": self.change}

    def describe(self) -> str:
        name, value = self.worst
        return f"{name.upper()} moved {value:.3f}, boundary {self.boundary:.3f}"


def drift(sources: list[np.ndarray], translated: list[np.ndarray], lookup: list[np.ndarray], classes, names: tuple[str, ...]) -> Drift:
    """``sources``: 2D model-space slices of one contrast; ``translated``/``lookup``: the model's and the lookup table's
    translations of them; ``classes``: the source set's :class:`~mri_cyclegan.baselines.TissueClasses` (sorted by
    mean, named by ``names``)."""
    import torch

    from .baselines import background_mask
    from .losses import rim_of

    k = len(names)
    diff_sum, count = np.zeros(k), np.zeros(k)
    rim_sum, rim_n = 0.0, 0
    change_sum, change_n = 0.0, 0
    for x, g, p in zip(sources, translated, lookup):
        x, d = np.asarray(x, np.float64), (np.asarray(g, np.float64) - np.asarray(p, np.float64)) / 2
        bg = background_mask(x)
        fg = ~bg
        rim = rim_of(torch.from_numpy(bg)[None, None], RIM)[0, 0].numpy() > 0
        tissue = fg & ~rim
        if tissue.any():
            label = classes.responsibilities(x[tissue]).argmax(1)
            diff_sum += np.bincount(label, d[tissue], minlength=k)
            count += np.bincount(label, minlength=k)
        if rim.any():
            rim_sum += float(np.abs(d[rim]).sum())
            rim_n += int(rim.sum())
        change_sum += float(np.abs(d[fg]).sum())
        change_n += int(fg.sum())
    tissue_drift = {n: float(abs(s / c)) if c else 0.0 for n, s, c in zip(names, diff_sum, count)}
    return Drift(tissue_drift, rim_sum / rim_n if rim_n else 0.0, change_sum / change_n if change_n else 0.0)


def verdict(drifts: dict[str, Drift], n_pairs: int = 0, bound: float = 0.0) -> tuple[bool, str]:
    """(model is the safer choice, one sentence saying why) from each direction's drift. A model trained with
    ``n_pairs`` co-registered pairs may move away from the lookup table because the pairs corrected it: then a drift
    is not a verdict, and the sentence says how to decide instead. ``bound``: the model's residual bound (model units;
    the drifts were measured on translations held within it): a tissue at the bound is said to be there, since within
    the limits then means held, not restrained."""
    bad = {d: v for d, v in drifts.items() if not v.within_limits}
    at_bound = [f"{d} {v.worst[0].upper()}" for d, v in drifts.items() if bound > 0 and v.worst[1] >= bound / 2 - 2e-3]
    held = (f"; {', '.join(at_bound)} reached the residual bound (translations are held within {bound / 2:g} of the lookup table "
            f"on the [0, 1] scale): training pushed further than it shows" if at_bound else "")
    if bad and n_pairs:
        why = "; ".join(f"{d} {v.describe()}" for d, v in bad.items())
        return False, (f"training with {n_pairs} co-registered pair(s) moved the translation away from the lookup table ({why}; limits "
                      f"{TISSUE_LIMIT} per tissue, {BOUNDARY_LIMIT} at the outline), which is what pairs are for when the table is wrong "
                      f"and a warning when they are few; only a held-out pair can tell: score one with --val-t1/--val-t2, or translate "
                      f"it and run 'mri-cyclegan evaluate --pred FAKE --ref TRUE --input SRC --model RUN'")
    change = max(v.change for v in drifts.values())
    if not bad and change < UNCHANGED:
        return True, (f"this model is its lookup table: training changed its translations by at most {change:.4f} on average "
                      f"([0, 1] scale, less than {UNCHANGED} in every direction), so it is as safe as the table and adds nothing to it; on data like these the training "
                      f"objective found nothing to correct (docs/faithfulness.md measures what more there is to gain)")
    if not bad:
        worst = max(drifts.items(), key=lambda kv: kv[1].worst[1])
        return True, (f"this model is the safer choice for your data: it adds detail to the lookup table without moving any tissue "
                      f"class more than {TISSUE_LIMIT} or the brain outline more than {BOUNDARY_LIMIT} "
                      f"(largest: {worst[0]} {worst[1].describe()}){held}; whether the detail it adds is right takes paired scans to check "
                      f"(translate a few, then 'mri-cyclegan evaluate --pred FAKE --ref TRUE --input SRC --model RUN' scores it next to "
                      f"the lookup table)")
    why = "; ".join(f"{d} {v.describe()}" for d, v in bad.items())
    return False, (f"the lookup table is the safer choice for your data: training moved it ({why}; limits {TISSUE_LIMIT} per tissue, "
                   f"{BOUNDARY_LIMIT} at the outline); checkpoints/best.safetensors is the last epoch within the limits")
