"""The embedded demo dataset: real ICBM 2009c T1/T2 (co-registered, so held-out slices have ground truth).

Training is unpaired: T1 and T2 training slices are sampled independently and augmented independently.
Held-out test slices keep their exact T1/T2 pairing and are >= ``gap`` mm away from every training slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch

from ..config import DataConfig
from ..io.nifti import slices
from .dataset import SliceSet
from .preprocess import fit_to_square, normalize, robust_range


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


def split_slices(mask: np.ndarray, axis: int = 2, test_every: int = 9, gap: int = 2, min_fraction: float = 0.15) -> tuple[list[int], list[int]]:
    """Slice indices for training and testing: every ``test_every``-th usable slice is a test slice;
    training slices are those more than ``gap`` slices (mm) from every test slice."""
    frac = np.moveaxis(mask, axis, 0).reshape(mask.shape[axis], -1).mean(1)
    usable = [int(i) for i in np.flatnonzero(frac >= min_fraction * frac.max())]
    test = usable[test_every // 2 :: test_every]
    train = [i for i in range(mask.shape[axis]) if frac[i] > 0 and min(abs(i - t) for t in test) > gap]
    return train, test


@dataclass
class DemoSplit:
    t1_train: SliceSet
    t2_train: SliceSet
    t1_test: list[np.ndarray]  # model space, at the training resolution (fitted, padding cropped)
    t2_test: list[np.ndarray]
    mask_test: list[np.ndarray]
    test_index: list[int]


def _fitted(sl: np.ndarray, size: int) -> np.ndarray:
    """A slice at the training resolution: fitted into size², padding cropped off."""
    out, p = fit_to_square(sl, size)
    (oy, ox), (h, w) = p.offset, p.resized
    return out[oy : oy + h, ox : ox + w]


def demo_split(cfg: DataConfig, volumes: DemoVolumes | None = None) -> DemoSplit:
    """Train and held-out test slices. Everything, test included, is at the model's resolution
    (slices fitted into image_size², as in training), so the model and the baselines see the same pixels."""
    v = volumes or load_demo_volumes()
    train_z, test_z = split_slices(v.mask)
    out = {}
    for key in ("t1", "t2"):
        vol = getattr(v, key)
        norm = normalize(vol, *robust_range(vol, cfg.percentiles))
        sl = slices(norm, "axial")
        fitted = np.stack([fit_to_square(sl[z], cfg.image_size)[0] for z in train_z])
        out[key] = (SliceSet(torch.from_numpy(fitted)[:, None].contiguous(), [f"{key}:{z}" for z in train_z]), [_fitted(sl[z], cfg.image_size) for z in test_z])
    masks = slices(v.mask.astype(np.float32) * 2 - 1, "axial")
    mask_test = [_fitted(masks[z], cfg.image_size) > 0 for z in test_z]
    return DemoSplit(out["t1"][0], out["t2"][0], out["t1"][1], out["t2"][1], mask_test, test_z)
