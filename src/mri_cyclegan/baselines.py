"""Unpaired intensity maps for T1 <-> T2 (model space [-1, 1], no signal = -1).

T1 and T2 order tissues oppositely (T1: CSF < GM < WM; T2: WM < GM < CSF), so "invert, then match the
histogram of the target contrast's training images" is a strong baseline that needs no pairs. The same lookup
table is the generator's prior (``ModelConfig.prior``), and without inversion it calibrates the outputs.

Plain quantile matching assumes both training sets hold the same tissue proportions. Unpaired cohorts rarely
do (other subjects, other slice coverage, atrophy, lesions): with 10 % CSF in the T1 set and 40 % in the T2 set,
grey matter is sent to CSF brightness. So the target histogram is first **re-weighted to the source's tissue
proportions**: a 3-class Gaussian mixture (CSF, GM, WM) is fitted to each set's tissue intensities, classes
correspond by rank (reversed when inverting), and every target voxel is weighted by
``p_source(class) / p_target(class)`` (soft, through its class responsibilities). With equal proportions the
weights are 1 and this is plain quantile matching. The proportions are only estimated when the classes are
resolved in both sets (Ashman's D >= 2 between neighbours); blurry or low-contrast data falls back to plain
quantile matching (logged). Assumptions that remain: the classes exist in both sets and keep their order (true for
CSF/GM/WM in T1 and T2; not for lesions brighter than CSF in T2, say).

Background is found spatially: dark pixels (<= -0.9) connected to the slice border. Only when the source has
background does the map keep it at -1 and ramp linearly (partial volume) up to the darkest tissue; a set without
background maps its darkest tissue like any other tissue (no CSF thrown to black).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .data.preprocess import FOREGROUND  # noqa: F401 -- the one definition; re-exported for the callers here

log = logging.getLogger(__name__)

N_KNOTS = 256
N_CLASSES = 3  # CSF, GM, WM
MAX_VALUES = 400_000  # subsample for the mixture fit and the quantiles


_SAID: set[str] = set()


def _said_once(key: str) -> bool:
    """False the first time ``key`` is seen in this process (so a repeated note is logged once)."""
    seen = key in _SAID
    _SAID.add(key)
    return seen


def knots(n: int = N_KNOTS) -> np.ndarray:
    return np.linspace(-1.0, 1.0, n, dtype=np.float32)


@dataclass(frozen=True)
class TissueValues:
    """Model-space intensities of one set, split into tissue and (border-connected) background."""

    tissue: np.ndarray  # 1D
    background: np.ndarray  # 1D
    pure: np.ndarray | None = None  # 1D: the tissue values away from edges (least partial volume), for the class fit

    @property
    def background_fraction(self) -> float:
        n = self.tissue.size + self.background.size
        return self.background.size / n if n else 0.0


def background_mask(slice_2d: np.ndarray, threshold: float = FOREGROUND) -> np.ndarray:
    """Pixels at or below ``threshold`` that are connected to the slice border (the air around the head)."""
    from scipy import ndimage

    dark = np.asarray(slice_2d) <= threshold
    if not dark.any():
        return dark
    labels, _ = ndimage.label(dark)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, border[border > 0])


def tissue_values(slices, max_values: int = MAX_VALUES, seed: int = 0) -> TissueValues:
    """Split an iterable of 2D model-space slices (or one (D, H, W) stack) into tissue and background values.
    The 2-pixel rim of tissue along the background is left out of both: it is partial volume with the air."""
    from scipy import ndimage

    tissue, background, pure = [], [], []
    for s in slices:
        s = np.asarray(s, dtype=np.float32)
        bg = background_mask(s)
        rim = ndimage.binary_dilation(bg, iterations=2) & ~bg if bg.any() else bg  # partial volume with the air
        t = ~bg & ~rim
        tissue.append(s[t])
        background.append(s[bg])
        if t.any():  # flat regions: gradient magnitude at most the slice's median within tissue
            grad = np.hypot(ndimage.sobel(s, 0), ndimage.sobel(s, 1))[t]
            pure.append(s[t][grad <= np.median(grad)])
    rng = np.random.default_rng(seed)
    t, b = np.concatenate(tissue), np.concatenate(background)
    p = np.concatenate(pure) if pure else np.zeros(0, np.float32)
    n = t.size + b.size
    if n > max_values:  # keep the tissue/background proportion while subsampling
        keep = max_values / n
        t = rng.choice(t, max(1, round(keep * t.size)), replace=False) if t.size else t
        b = rng.choice(b, round(keep * b.size), replace=False) if b.size else b
        p = rng.choice(p, max(1, round(keep * p.size)), replace=False) if p.size else p
    return TissueValues(t.astype(np.float64), b.astype(np.float64), p.astype(np.float64))


def _as_tissue_values(x) -> TissueValues:
    if isinstance(x, TissueValues):
        return x
    v = np.asarray(x, dtype=np.float64).ravel()  # no spatial information: a plain threshold
    return TissueValues(v[v > FOREGROUND], v[v <= FOREGROUND])


@dataclass(frozen=True)
class TissueClasses:
    """A 1D Gaussian mixture, classes sorted by mean."""

    means: np.ndarray
    sds: np.ndarray
    weights: np.ndarray

    def boundaries(self, lo: float = -1.0, hi: float = 1.0, n: int = 4001) -> np.ndarray:
        """The k - 1 intensities where the most likely class changes from one class to the next (sorted), read on a
        grid over [lo, hi]; midpoints between adjacent means where a broad class wins on both sides of a narrow one."""
        grid = np.linspace(lo, hi, n)
        label = self.responsibilities(grid).argmax(1)
        change = np.flatnonzero(np.diff(label) != 0)
        k = len(self.means)
        if len(change) == k - 1 and (np.diff(label[np.r_[0, change + 1]]) == 1).all():
            return 0.5 * (grid[change] + grid[change + 1])
        return 0.5 * (self.means[:-1] + self.means[1:])

    def responsibilities(self, v: np.ndarray) -> np.ndarray:
        z = (np.asarray(v, dtype=np.float64)[:, None] - self.means) / self.sds
        logp = np.log(self.weights) - np.log(self.sds) - 0.5 * z * z
        logp -= logp.max(1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(1, keepdims=True)


def _em(x: np.ndarray, c: np.ndarray, means: np.ndarray, sds: np.ndarray, floor: float, iters: int) -> tuple[TissueClasses, float]:
    """EM on histogram bins ``x`` with counts ``c``; returns the mixture and its mean log-likelihood."""
    k = means.size
    weights = np.full(k, 1.0 / k)
    for _ in range(iters):
        r = TissueClasses(means, sds, weights).responsibilities(x) * c[:, None]
        nk = r.sum(0) + 1e-9
        new_means = (r * x[:, None]).sum(0) / nk
        sds = np.maximum(np.sqrt((r * (x[:, None] - new_means) ** 2).sum(0) / nk), floor)
        weights = np.maximum(nk / nk.sum(), 1e-4)
        weights /= weights.sum()
        converged = np.abs(new_means - means).max() < 1e-6
        means = new_means
        if converged:
            break
    z = (x[:, None] - means) / sds
    density = (weights / (sds * np.sqrt(2 * np.pi)) * np.exp(-0.5 * z * z)).sum(1)
    order = np.argsort(means)
    return TissueClasses(means[order], sds[order], weights[order]), float((c * np.log(density + 1e-300)).sum() / c.sum())


def fit_classes(values: np.ndarray, k: int = N_CLASSES, iters: int = 200, bins: int = 512) -> TissueClasses:
    """A k-class 1D Gaussian mixture fitted by EM on the values' histogram (fast, deterministic): the best of
    starts at the quantile bins and at evenly spaced intensities. Values clipped at the window's ends (+-1)
    are left out: they pile up there because of the window, not because a tissue is there."""
    v = np.asarray(values, dtype=np.float64).ravel()
    inner = v[(v > -0.999) & (v < 0.999)]
    v = inner if inner.size >= 10 * k else v
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo + 1e-3
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    x, c = 0.5 * (edges[:-1] + edges[1:]), counts.astype(np.float64)
    x, c = x[c > 0], c[c > 0]
    floor = max(1e-3, (hi - lo) / bins)
    qs = np.quantile(v, np.linspace(0, 1, k + 1))
    p1, p99 = np.quantile(v, [0.01, 0.99])
    spaced = np.linspace(p1, p99, k)
    starts = [(0.5 * (qs[:-1] + qs[1:]), np.maximum(np.diff(qs) / 2, floor)),
              (spaced, np.full(k, max((p99 - p1) / (2 * k), floor)))]
    fits = [_em(x, c, m, s, floor, iters) for m, s in starts]
    return max(fits, key=lambda f: f[1])[0]


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: np.ndarray) -> np.ndarray:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) - 0.5 * w
    cdf /= w.sum()
    return np.interp(q, cdf, v)


def tissue_classes(values, k: int = N_CLASSES, iters: int = 100) -> TissueClasses:
    """The tissue classes of a set: means and widths fitted on its *pure* values (away from edges, where partial
    volume between two tissues fills the gap between their peaks and pulls a class onto it: in T2, CSF/GM partial
    volume otherwise becomes the 'GM' class), then the class proportions re-estimated on all its tissue values
    (EM on the weights alone). Plain values (no spatial information) are fitted as they are."""
    tv = values if isinstance(values, TissueValues) else None
    allv = tv.tissue if tv is not None else np.asarray(values, dtype=np.float64).ravel()
    if tv is None or tv.pure is None or tv.pure.size < 100 * k:
        return fit_classes(allv, k)
    c = fit_classes(tv.pure, k)
    counts, edges = np.histogram(allv, bins=512)
    x, n = 0.5 * (edges[:-1] + edges[1:]), counts.astype(np.float64)
    weights = c.weights
    for _ in range(iters):
        r = TissueClasses(c.means, c.sds, weights).responsibilities(x) * n[:, None]
        new = np.maximum(r.sum(0) / n.sum(), 1e-4)
        new /= new.sum()
        done = np.abs(new - weights).max() < 1e-6
        weights = new
        if done:
            break
    return TissueClasses(c.means, c.sds, weights)


def separated(classes: TissueClasses, min_d: float = 2.0) -> bool:
    """Adjacent classes are resolved: Ashman's D = |m1 - m2| / sqrt((s1² + s2²) / 2) >= ``min_d`` for every pair."""
    m, s = classes.means, classes.sds
    d = np.abs(np.diff(m)) / np.sqrt((s[:-1] ** 2 + s[1:] ** 2) / 2)
    return bool((d >= min_d).all())


def proportion_weights(source, target, invert: bool, k: int = N_CLASSES) -> np.ndarray | None:
    """Per-target-voxel weights (one per ``target.tissue`` value) that give the target set the source set's class
    proportions, or None when the classes cannot be told apart in one of the sets (then the proportions are unknown
    and nothing is re-weighted). ``source``/``target``: :class:`TissueValues` or plain value arrays."""
    cs, ct = tissue_classes(source, k), tissue_classes(target, k)
    if not (separated(cs) and separated(ct)):
        return None
    p_source = cs.weights[::-1] if invert else cs.weights  # class c of the target corresponds to class c (or k-1-c) of the source
    tissue = target.tissue if isinstance(target, TissueValues) else np.asarray(target, dtype=np.float64).ravel()
    return ct.responsibilities(tissue) @ (p_source / ct.weights)


def histogram_matching_lut(source, target, n_knots: int = N_KNOTS, invert: bool = False, reweight: bool = True) -> np.ndarray:
    """Monotone map (decreasing if ``invert``) taking the source tissue histogram to the target's, as values at
    :func:`knots`. ``source``/``target``: :class:`TissueValues` (from :func:`tissue_values`) or plain value arrays.
    ``reweight=False`` is plain quantile matching (kept for comparison)."""
    from .errors import InputError

    src, tgt = _as_tissue_values(source), _as_tissue_values(target)
    if src.tissue.size < 10 or tgt.tissue.size < 10:
        raise InputError("intensity matching needs tissue (brighter than the background) in both training sets")
    x = knots(n_knots).astype(np.float64)
    below = np.searchsorted(np.sort(src.tissue), x, side="left") / src.tissue.size
    q = np.clip(1.0 - below if invert else below, 0.0, 1.0)
    w = proportion_weights(src, tgt, invert) if reweight else None
    if reweight and w is None and not _said_once("overlap"):
        log.info("intensity matching: tissue classes overlap too much to estimate their proportions; plain quantile "
                 "matching (assumes both sets hold the same tissue proportions)")
    lut = _weighted_quantile(tgt.tissue, np.ones(tgt.tissue.size) if w is None else w, q)
    if src.background_fraction > 0.005:
        # Background stays background, and partial-volume pixels between it and the darkest tissue (0.1st
        # percentile) blend linearly between the two: continuous, nothing jumps from black to bright.
        a = float(np.median(src.background))
        b = max(float(np.quantile(src.tissue, 0.001)), a + 0.02)
        ib = min(int(np.searchsorted(x, b)), x.size - 1)
        lut = np.where(x <= a, -1.0, np.where(x < x[ib], -1.0 + (lut[ib] + 1.0) * (x - a) / (x[ib] - a), lut))
    return lut.astype(np.float32)


def inverse_histogram_lut(source, target, n_knots: int = N_KNOTS, reweight: bool = True) -> np.ndarray:
    """The darkest source tissue gets the brightest target tissue, at the source's tissue proportions."""
    return histogram_matching_lut(source, target, n_knots, invert=True, reweight=reweight)


def apply_lut(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """The lookup table on a numpy array: the same piecewise-linear map as the model's ``HistogramPrior.table``
    (torch, differentiable; a test holds the two equal), without the outline unmixing the model's prior adds."""
    return np.interp(np.asarray(x, dtype=np.float32), knots(lut.size), lut).astype(np.float32)


def identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)
