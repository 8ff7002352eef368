"""The embedded demo dataset: real ICBM 2009c T1/T2 (co-registered, so held-out slices have ground truth).

Training is unpaired: T1 and T2 training slices are sampled independently and augmented independently.
Held-out test slabs keep their exact T1/T2 pairing and are more than ``gap`` mm away from every training slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch

from ..config import DataConfig
from ..io.volume import Volume
from .dataset import SliceSet, Stack, usable_slices
from .preprocess import Preprocessor


@dataclass
class DemoVolumes:
    t1: np.ndarray  # (X, Y, Z) RAS, 1 mm, skull-stripped
    t2: np.ndarray
    mask: np.ndarray  # bool brain mask
    affine: np.ndarray


def load_demo_volumes() -> DemoVolumes:
    with resources.files(__package__).joinpath("demo/icbm2009c.npz").open("rb") as f:
        z = np.load(f)
        shape = tuple(int(s) for s in z["shape"])
        mask = np.unpackbits(z["mask"])[: int(np.prod(shape))].reshape(shape).astype(bool)
        t1 = z["t1"].astype(np.float32) * float(z["t1_scale"])
        t2 = z["t2"].astype(np.float32) * float(z["t2_scale"])
        return DemoVolumes(t1, t2, mask, z["affine"].astype(np.float64))


def split_slabs(mask: np.ndarray, axis: int = 2, n_slabs: int = 3, thickness: int = 8, gap: int = 5,
                min_fraction: float = 0.15) -> tuple[list[int], list[int]]:
    """Slice indices for training and testing. The test set is ``n_slabs`` contiguous slabs of ``thickness``
    slices, centred at evenly spaced positions inside the usable range (slices whose mask covers at least
    ``min_fraction`` of the largest), so whole-volume and through-plane scores are possible. Training slices
    are more than ``gap`` slices (mm) from every test slice: a 3D SSIM window (radius 5) or a context window
    around a test voxel never reaches a training slice."""
    frac = np.moveaxis(mask, axis, 0).reshape(mask.shape[axis], -1).mean(1)
    usable = np.flatnonzero(frac >= min_fraction * frac.max())
    lo, hi = int(usable[0]), int(usable[-1])
    centres = [lo + (hi - lo) * (k + 1) / (n_slabs + 1) for k in range(n_slabs)]
    test = sorted({int(round(c - thickness / 2)) + i for c in centres for i in range(thickness)})
    train = [i for i in range(mask.shape[axis]) if frac[i] > 0 and min(abs(i - t) for t in test) > gap]
    return train, test


@dataclass
class DemoSplit:
    t1: Volume  # whole volumes (RAS, 1 mm): test slabs are scored on translations of the whole input
    t2: Volume
    mask: np.ndarray  # brain mask
    t1_train: SliceSet
    t2_train: SliceSet
    train_index: list[int]
    test_index: list[int]

    @property
    def test_mask(self) -> np.ndarray:
        """Brain mask restricted to the held-out axial slabs."""
        m = np.zeros_like(self.mask)
        m[:, :, self.test_index] = self.mask[:, :, self.test_index]
        return m


def demo_split(cfg: DataConfig, volumes: DemoVolumes | None = None) -> DemoSplit:
    """Training slices of both contrasts (unpaired: T1 and T2 are sampled independently) through the same
    Preprocessor as any user file, and the held-out slabs. Axial slices only (the demo's axis)."""
    if cfg.axis != "axial":
        raise ValueError("the demo splits axial slabs; use axis 'axial'")
    v = volumes or load_demo_volumes()
    train_z, test_z = split_slabs(v.mask)
    pre = Preprocessor(cfg)
    sets = {}
    vols = {}
    for key in ("t1", "t2"):
        vols[key] = Volume(getattr(v, key), v.affine)
        stack, geom = pre.forward(vols[key])
        usable = usable_slices(stack, cfg.min_foreground, train_z)
        source = {"shape": list(geom.file_shape), "spacing": [round(s, 4) for s in vols[key].spacing], "window": [float(geom.lo), float(geom.hi)],
                  "format": "nii.gz (embedded)"}
        sets[key] = SliceSet([Stack(f"icbm2009c_{key}", torch.from_numpy(stack).half(), usable, source)], cfg.context_slices)
    return DemoSplit(vols["t1"], vols["t2"], v.mask, sets["t1"], sets["t2"], train_z, test_z)
