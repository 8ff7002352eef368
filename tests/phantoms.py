"""Synthetic brain-like phantoms: nested ellipses of WM / GM / CSF with T1- and T2-like contrasts."""

from __future__ import annotations

import numpy as np

# relative signal (BrainWeb-like ordering): T1: CSF < GM < WM; T2: WM < GM < CSF
T1 = {"csf": 0.25, "gm": 0.6, "wm": 0.85}
T2 = {"csf": 0.95, "gm": 0.55, "wm": 0.35}


def labels_2d(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    cy, cx = h / 2 + rng.uniform(-2, 2), w / 2 + rng.uniform(-2, 2)
    ry, rx = h * rng.uniform(0.36, 0.42), w * rng.uniform(0.34, 0.4)
    r = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2
    lab = np.zeros(shape, np.uint8)
    lab[r < 1] = 1  # csf rim
    lab[r < 0.85] = 2  # gm
    lab[r < 0.55] = 3  # wm
    vent = ((y - cy) / (ry * 0.2)) ** 2 + ((x - cx + rx * 0.15) / (rx * 0.08)) ** 2 < 1
    lab[vent] = 1
    return lab


def render(lab: np.ndarray, contrast: dict[str, float], rng: np.random.Generator, scale: float = 1000.0) -> np.ndarray:
    img = np.zeros(lab.shape, np.float32)
    for k, name in ((1, "csf"), (2, "gm"), (3, "wm")):
        img[lab == k] = contrast[name]
    img = img + rng.normal(0, 0.02, lab.shape).astype(np.float32) * (lab > 0)
    return np.clip(img, 0, None) * scale


def pair_2d(shape: tuple[int, int], seed: int = 0, scale: float = 1000.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lab = labels_2d(shape, rng)
    return render(lab, T1, rng, scale), render(lab, T2, rng, scale)


def volume_pair(shape: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """3D phantom: ellipsoid slices along the last axis shrinking away from the middle."""
    rng = np.random.default_rng(seed)
    t1 = np.zeros(shape, np.float32)
    t2 = np.zeros(shape, np.float32)
    nz = shape[2]
    for z in range(nz):
        f = 1 - abs(z - nz / 2) / (nz / 1.6)
        sub = (max(8, int(shape[0] * f)), max(8, int(shape[1] * f)))
        lab = np.zeros(shape[:2], np.uint8)
        oy, ox = (shape[0] - sub[0]) // 2, (shape[1] - sub[1]) // 2
        lab[oy : oy + sub[0], ox : ox + sub[1]] = labels_2d(sub, rng)
        t1[:, :, z] = render(lab, T1, rng)
        t2[:, :, z] = render(lab, T2, rng)
    return t1, t2


TISSUES = {1: "csf", 2: "gm", 3: "wm"}


def tissue_labels(shape: tuple[int, int], fractions: tuple[float, float, float], background: bool, rng: np.random.Generator,
                  smoothness: float = 4.0) -> np.ndarray:
    """A label map (0 background, 1 CSF, 2 GM, 3 WM) whose brain holds exactly ``fractions`` of CSF/GM/WM, as
    smooth random blobs; with ``background`` the brain is an ellipse in air, without it the brain fills the image."""
    from scipy import ndimage

    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    brain = (((y - h / 2) / (0.44 * h)) ** 2 + ((x - w / 2) / (0.42 * w)) ** 2 < 1) if background else np.ones(shape, bool)
    field = ndimage.gaussian_filter(rng.normal(size=shape), smoothness)
    t_csf, t_gm = np.quantile(field[brain], [fractions[0], fractions[0] + fractions[1]])
    lab = np.zeros(shape, np.uint8)
    lab[brain] = 3
    lab[brain & (field <= t_gm)] = 2
    lab[brain & (field <= t_csf)] = 1
    return lab


def render_tissues(lab: np.ndarray, contrast: dict[str, float], rng: np.random.Generator, noise: float = 0.02,
                   scale: float = 1000.0) -> np.ndarray:
    """Signal with partial volume at tissue borders (smoothed class maps) and magnitude (Rician-like) noise."""
    from scipy import ndimage

    img = np.zeros(lab.shape, np.float64)
    for k, name in TISSUES.items():
        img += contrast[name] * ndimage.gaussian_filter((lab == k).astype(np.float64), 0.6)
    img = np.abs(img + rng.normal(0, noise, lab.shape) + 1j * rng.normal(0, noise, lab.shape))
    return (img * scale).astype(np.float32)
