"""Simulated subjects for faithfulness checks: tissue maps of the embedded ICBM 2009c brain, deformed into other
anatomies, with extracerebral CSF, optional MS-like white-matter lesions, spin-echo physics (BrainWeb 1.5 T
parameters, Kwan et al. 1999), a smooth bias field and magnitude noise.

    subject = simulate_subject(seed=3, lesions=10)
    t1, t2 = subject.image("t1"), subject.image("t2")   # (X, Y, Z) float32, 1 mm RAS, paired truth

Tissue maps (partial-volume fractions) come from the demo T1: a 3-class fuzzy split of its brain intensities, and a
3-voxel shell of CSF around the brain mask (the bright rim of T2-weighted images). Deformation: a random smooth
displacement field (up to ``warp_mm``) and a random anisotropic scale, so each subject has its own anatomy and its own
tissue proportions. Lesions: ellipsoids (2-5 mm radii) inside deep white matter, long T1 and long T2 (bright in T2,
dark grey in T1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# (PD, T1 ms, T2 ms) at 1.5 T
TISSUE_PARAMS = {
    "csf": (1.0, 2569.0, 329.0),
    "gm": (0.86, 833.0, 83.0),
    "wm": (0.77, 500.0, 70.0),
    "lesion": (0.9, 1100.0, 170.0),
}
# spin-echo (TR, TE) in ms
SEQUENCES = {"t1": (500.0, 12.0), "t2": (3500.0, 100.0)}
TISSUES = ("csf", "gm", "wm", "lesion")


def signal(tissue: str, contrast: str) -> float:
    pd, t1, t2 = TISSUE_PARAMS[tissue]
    tr, te = SEQUENCES[contrast]
    return float(pd * (1 - np.exp(-tr / t1)) * np.exp(-te / t2))


@lru_cache(maxsize=1)
def template_maps() -> tuple[np.ndarray, np.ndarray]:
    """(4, X, Y, Z) float32 fractions of CSF/GM/WM/lesion (lesion all zero) of the demo brain, and its affine."""
    from scipy import ndimage

    from mri_cyclegan.baselines import fit_classes
    from mri_cyclegan.data.demo import load_demo_volumes

    v = load_demo_volumes()
    t1, mask = v.t1, v.mask
    vals = t1[mask]
    m = fit_classes(vals / np.percentile(vals, 99.5)).means * np.percentile(vals, 99.5)  # csf < gm < wm
    x = t1
    gm_lo = np.clip((x - m[0]) / (m[1] - m[0]), 0, 1)  # csf -> gm
    gm_hi = np.clip((m[2] - x) / (m[2] - m[1]), 0, 1)  # gm -> wm
    wm = np.where(x >= m[1], 1 - gm_hi, 0.0)
    gm = np.where(x < m[1], gm_lo, gm_hi)
    csf = np.where(x < m[1], 1 - gm_lo, 0.0)
    maps = np.zeros((4, *t1.shape), np.float32)
    maps[0], maps[1], maps[2] = csf * mask, gm * mask, wm * mask
    shell = ndimage.binary_dilation(mask, iterations=3) & ~mask  # extracerebral CSF
    maps[0][shell] = 1.0
    return maps, v.affine


@dataclass
class Subject:
    maps: np.ndarray  # (4, X, Y, Z) tissue fractions: csf, gm, wm, lesion
    affine: np.ndarray
    bias: dict[str, np.ndarray]  # per contrast, multiplicative field
    noise_seed: int
    noise: float = 0.015  # noise sd relative to the brightest tissue signal

    @property
    def brain(self) -> np.ndarray:
        """Everything with signal: brain, lesions and the CSF around them."""
        return self.maps.sum(0) > 0.5

    @property
    def lesion_core(self) -> np.ndarray:
        return self.maps[3] > 0.5

    def pure(self, tissue: str, erode: int = 1) -> np.ndarray:
        from scipy import ndimage

        m = self.maps[TISSUES.index(tissue)] > 0.9
        return ndimage.binary_erosion(m, iterations=erode) if erode else m

    def clean(self, contrast: str) -> np.ndarray:
        """Noise- and bias-free signal."""
        s = np.zeros(self.maps.shape[1:], np.float32)
        for k, t in enumerate(TISSUES):
            s += signal(t, contrast) * self.maps[k]
        return s

    def image(self, contrast: str) -> np.ndarray:
        rng = np.random.default_rng(self.noise_seed + (0 if contrast == "t1" else 1))
        s = self.clean(contrast) * self.bias[contrast]
        sd = self.noise * max(signal(t, contrast) for t in ("csf", "gm", "wm"))
        re = s + rng.normal(0, sd, s.shape).astype(np.float32)
        im = rng.normal(0, sd, s.shape).astype(np.float32)
        return np.sqrt(re * re + im * im).astype(np.float32)


def _smooth_field(shape, rng, sigma: float, amplitude: float) -> np.ndarray:
    from scipy import ndimage

    small = tuple(max(4, s // 4) for s in shape)
    f = ndimage.gaussian_filter(rng.normal(size=small), sigma / 4)
    f = ndimage.zoom(f, [s / t for s, t in zip(shape, small)], order=1)[: shape[0], : shape[1], : shape[2]]
    f = f / (np.abs(f).max() + 1e-9) * amplitude
    return f.astype(np.float32)


def simulate_subject(seed: int, lesions: int = 0, warp_mm: float = 4.0, scale: float = 0.08, bias: float = 0.12,
                     noise: float = 0.015, identity: bool = False) -> Subject:
    """A new anatomy from the template (``identity`` keeps the template's), with ``lesions`` white-matter lesions."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    maps, affine = template_maps()
    shape = maps.shape[1:]
    if not identity:
        centre = (np.array(shape) - 1) / 2
        s = 1 + rng.uniform(-scale, scale, 3)
        grid = np.indices(shape, dtype=np.float32)
        coords = [centre[i] + (grid[i] - centre[i]) * s[i] + _smooth_field(shape, rng, 12, warp_mm) for i in range(3)]
        maps = np.stack([ndimage.map_coordinates(m, coords, order=1, mode="constant") for m in maps])
    else:
        maps = maps.copy()
    if lesions:
        deep = ndimage.binary_erosion(maps[2] > 0.95, iterations=3)
        cand = np.argwhere(deep)
        if len(cand):
            grid = np.indices(shape, dtype=np.float32)
            les = np.zeros(shape, np.float32)
            for c in cand[rng.choice(len(cand), min(lesions, len(cand)), replace=False)]:
                r = rng.uniform(2.0, 5.0, 3)
                lo = np.maximum(c - 7, 0)
                hi = np.minimum(c + 8, shape)
                sl = tuple(slice(a, b) for a, b in zip(lo, hi))
                d = sum(((grid[i][sl] - c[i]) / r[i]) ** 2 for i in range(3))
                les[sl] = np.maximum(les[sl], np.clip((1.15 - np.sqrt(d)) / 0.3, 0, 1))  # soft edge
            les = np.minimum(les, maps[2])  # lesions replace white matter only
            maps[2] -= les
            maps[3] = les
    fields = {c: np.exp(_smooth_field(shape, rng, 30, bias)) for c in ("t1", "t2")}
    return Subject(maps.astype(np.float32), affine, fields, seed * 7 + 1, noise)
