"""Unpaired intensity baselines for T1 <-> T2 (model space [-1, 1], background -1).

T1 and T2 order tissues oppositely (T1: CSF < GM < WM; T2: WM < GM < CSF), so "invert, then match
the histogram of the target contrast's training images" is a strong baseline that needs no pairs.
The same lookup table is the generator's prior (``ModelConfig.prior``).
"""

from __future__ import annotations

import numpy as np

N_KNOTS = 256
FOREGROUND = -0.9  # model-space threshold between background (-1) and tissue


def knots(n: int = N_KNOTS) -> np.ndarray:
    return np.linspace(-1.0, 1.0, n, dtype=np.float32)


def inverse_histogram_lut(source: np.ndarray, target: np.ndarray, n_knots: int = N_KNOTS) -> np.ndarray:
    """Monotone decreasing map from source to target intensities, as values at :func:`knots`.

    The darkest source tissue gets the brightest target tissue: for knot x, the fraction q of source
    foreground >= x is looked up as the q-quantile of the target foreground. Background (-1) stays -1, with a
    linear ramp up to the first tissue knot (the map is continuous).
    """
    return histogram_matching_lut(source, target, n_knots, invert=True)


def histogram_matching_lut(source: np.ndarray, target: np.ndarray, n_knots: int = N_KNOTS, invert: bool = False) -> np.ndarray:
    """Monotone map (decreasing if ``invert``) taking the source foreground histogram to the target's."""
    src = np.asarray(source, dtype=np.float64).ravel()
    tgt = np.asarray(target, dtype=np.float64).ravel()
    src, tgt = src[src > FOREGROUND], tgt[tgt > FOREGROUND]
    if src.size == 0 or tgt.size == 0:
        raise ValueError("inverse histogram matching needs foreground (> -0.9) in both domains")
    x = knots(n_knots).astype(np.float64)
    src_sorted = np.sort(src)
    below = np.searchsorted(src_sorted, x, side="left") / src_sorted.size
    q = 1.0 - below if invert else below
    lut = np.quantile(tgt, np.clip(q, 0.0, 1.0))
    # Background (-1) stays background; between it and the first tissue knot the map ramps linearly, so that the
    # darkest tissue (partial-volume edges, sulcal CSF in T1) is not thrown to black by a jump at the threshold.
    first = int(np.argmax(x > FOREGROUND))
    below = x < x[first]
    lut[below] = -1.0 + (lut[first] + 1.0) * (x[below] + 1.0) / (x[first] + 1.0)
    return lut.astype(np.float32)


def apply_lut(x: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return np.interp(np.asarray(x, dtype=np.float32), knots(lut.size), lut).astype(np.float32)


def identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)
