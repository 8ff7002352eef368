"""Unpaired slice data: decode and preprocess once, keep in memory, sample T1 and T2 patches independently."""

from __future__ import annotations

import logging
import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..io import is_dicom, is_volume, list_inputs, read_any
from ..io.formats import read_affine
from ..io.volume import Volume
from .augment import random_flip_affine
from .patches import foreground_patches
from .preprocess import Preprocessor, context_windows, foreground_fraction

log = logging.getLogger(__name__)


@dataclass
class Stack:
    """One file's slices in model space: (D, h, w), stored as float16 to halve memory."""

    name: str
    data: torch.Tensor
    usable: list[int]  # slices with enough foreground to train on
    source: dict = field(default_factory=dict)  # what the file was: shape, spacing, intensity window, format (model card)


TISSUE_SLICES = 256  # slices per set whose intensities feed the prior and the calibration


@dataclass
class SliceSet:
    """All stacks of one contrast, indexed by usable slice."""

    stacks: list[Stack]
    context: int = 1  # K: channels per sample (2.5D)
    index: list[tuple[int, int]] = field(init=False)  # (stack, slice) of every usable slice
    _tissue: object = field(default=None, init=False, repr=False)  # cache of tissue_values()

    def __post_init__(self) -> None:
        self.index = [(i, z) for i, s in enumerate(self.stacks) for z in s.usable]

    def __len__(self) -> int:
        return len(self.index)

    def window(self, i: int) -> torch.Tensor:
        """Usable slice ``i`` with its context: (K, h, w) float32."""
        s, z = self.index[i]
        stack = self.stacks[s].data
        r = self.context // 2
        idx = torch.arange(z - r, z + r + 1).clamp(0, stack.shape[0] - 1)
        return stack[idx].float()

    def windows(self, indices: list[int]) -> list[torch.Tensor]:
        return [self.window(i) for i in indices]

    def foreground_values(self, max_values: int = 4_000_000, seed: int = 0) -> np.ndarray:
        """Model-space intensities of the usable slices (a seeded subsample when there are many)."""
        vals = np.concatenate([self.stacks[s].data[z].float().numpy().ravel() for s, z in self.index])
        if vals.size > max_values:
            vals = np.random.default_rng(seed).choice(vals, max_values, replace=False)
        return vals

    def tissue_values(self):
        """Tissue and background intensities of (up to TISSUE_SLICES evenly spread) usable slices, for the
        intensity prior and the output calibration (:func:`mri_cyclegan.baselines.tissue_values`); computed once."""
        from ..baselines import tissue_values

        if self._tissue is None:
            picks = np.unique(np.linspace(0, len(self) - 1, min(TISSUE_SLICES, len(self))).round().astype(int))
            self._tissue = tissue_values(self.stacks[self.index[i][0]].data[self.index[i][1]].float().numpy() for i in picks)
        return self._tissue

    def summary(self) -> dict:
        """What this set is made of (for the model card): files, formats, sizes, spacings, intensity windows."""
        src = [s.source for s in self.stacks if s.source]
        spacings = [sp for s in src if s.get("spacing") for sp in s["spacing"]]
        shapes = sorted({tuple(s["shape"]) for s in src})
        return {
            "files": len(self.stacks),
            "slices": len(self),
            "formats": sorted({s["format"] for s in src}),
            "shapes": [list(x) for x in shapes[:3]] + ([["..."]] if len(shapes) > 3 else []),
            "spacing_mm": [min(spacings), max(spacings)] if spacings else None,
            "intensity_window": [min(s["window"][0] for s in src), max(s["window"][1] for s in src)] if src else None,
        }

    @property
    def max_shape(self) -> tuple[int, int]:
        return (max(s.data.shape[1] for s in self.stacks), max(s.data.shape[2] for s in self.stacks))


def usable_slices(stack: np.ndarray, min_foreground: float, candidates: list[int] | None = None) -> list[int]:
    """Slices of a model-space stack with at least ``min_foreground`` tissue (a 2D image is always usable)."""
    if stack.shape[0] == 1:
        return [0]
    ks = range(stack.shape[0]) if candidates is None else candidates
    return [k for k in ks if foreground_fraction(stack[k]) >= max(min_foreground, 1e-6)]


def _load_file(path: Path, pre: Preprocessor, min_foreground: float) -> Stack:
    vol = read_any(path)
    stack, geom = pre.forward(vol)
    name = path.name.lower()
    fmt = "nii.gz" if name.endswith(".nii.gz") else path.suffix.lower().lstrip(".") or "dicom"
    source = {"shape": list(geom.file_shape), "spacing": [round(s, 4) for s in vol.spacing] if geom.is_volume else None,
              "window": [float(geom.lo), float(geom.hi)], "format": "dicom" if is_dicom(path) else fmt}
    return Stack(path.name, torch.from_numpy(stack).half(), usable_slices(stack, min_foreground), source)


def median_plane_spacing(files: list[Path], cfg: DataConfig) -> float:
    """The dataset fingerprint behind the default target spacing: median in-plane voxel size (mm) of the volumes
    (0 when there are none: 2D images keep their pixel grid)."""
    pre = Preprocessor(cfg, 0.0)
    values = []
    for f in files:
        if is_volume(f):
            values.extend(pre.plane_spacing(Volume(np.zeros((1, 1, 1), np.float32), read_affine(f))))
    return round(float(statistics.median(values)), 4) if values else 0.0


def with_data_fingerprint(config, *paths: str | Path | list[Path]):
    """nnU-Net style: derive what the user left at 'auto' from the training data and record it in the config.
    Today that is the in-plane target spacing (``data.spacing`` = 0 -> median in-plane spacing of the volumes)."""
    d = config.data
    if d.spacing or d.image_size:
        return config
    files = [f for p in paths for f in _files(p, "input")]
    spacing = median_plane_spacing(files, d)
    if spacing:
        log.info("target in-plane spacing %.4g mm (median of the %d training volumes); set --spacing to choose another", spacing,
                 sum(is_volume(f) for f in files))
        config = config.replace(**{"data.spacing": spacing})
    return config


def _files(source: str | Path | list[Path], what: str) -> list[Path]:
    """A path (file or folder, searched) or an explicit list of files (e.g. a BIDS query's result)."""
    return list(source) if isinstance(source, (list, tuple)) else list_inputs(source, what)


def load_domain(path: str | Path | list[Path], cfg: DataConfig, what: str = "input") -> SliceSet:
    """Read every image/volume under ``path`` (or in a list of files), in parallel, into one SliceSet in model space."""
    from ..errors import InputError

    files = _files(path, what)
    pre = Preprocessor(cfg)
    workers = min(len(files), os.cpu_count() or 1, 8)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        stacks = list(pool.map(lambda f: _load_file(f, pre, cfg.min_foreground), files))
    out = SliceSet(stacks, cfg.context_slices)
    if not len(out):
        raise InputError(f"{what} {path}: no slice has enough foreground (min_foreground={cfg.min_foreground})")
    shapes = sorted({tuple(s.data.shape[1:]) for s in stacks})
    shown = ", ".join(f"{h}x{w}" for h, w in shapes[:4]) + (" ..." if len(shapes) > 4 else "")
    log.info("%s: %d slices from %d files, model-space slice sizes %s", what, len(out), len(files), shown)
    return out


class UnpairedBatches:
    """Infinite unpaired sampling: T1 and T2 slices drawn independently; from each, one patch around
    foreground, augmented on its own. Randomness comes from one seeded generator (saved in checkpoints).

    Under DDP (``world_size`` > 1) every rank draws the same global batch of ``batch_size * world_size`` from the
    same generator and keeps its own ``batch_size`` slice: T1 and T2 are sharded independently and
    deterministically, N ranks x batch B see exactly what one process with batch N*B would, and the sampler
    state is the same on every rank (one copy in the checkpoint, valid for any number of ranks on resume)."""

    def __init__(self, t1: SliceSet, t2: SliceSet, cfg: DataConfig, batch_size: int, seed: int, multiple: int = 4,
                 rank: int = 0, world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of size {world_size}")
        self.t1, self.t2, self.cfg, self.batch_size = t1, t2, cfg, batch_size
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        if cfg.train_size:
            self.size = (cfg.train_size, cfg.train_size)
        else:  # whole slices: pad every slice to the largest, rounded up to the generator's multiple
            h, w = (max(a, b) for a, b in zip(t1.max_shape, t2.max_shape))
            self.size = (-(-h // multiple) * multiple, -(-w // multiple) * multiple)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        if c.flip or c.rotate_deg or c.scale or c.translate:
            x = random_flip_affine(x, self.generator, c.flip, c.rotate_deg, c.scale, c.translate)
        return x

    def _draw(self, data: SliceSet) -> torch.Tensor:
        idx = torch.randint(0, len(data), (self.batch_size * self.world_size,), generator=self.generator).tolist()
        # a margin around each patch so that rotation/scaling never pulls in empty corners
        margin = 0 if not (self.cfg.rotate_deg or self.cfg.scale or self.cfg.translate) else max(2, round(0.125 * max(self.size)))
        big = foreground_patches(data.windows(idx), (self.size[0] + 2 * margin, self.size[1] + 2 * margin), self.generator)
        out = self._augment(big)[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        return out[:, :, margin : margin + self.size[0], margin : margin + self.size[1]].contiguous()

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, K, P, P) T1 and T2 batches."""
        return self._draw(self.t1), self._draw(self.t2)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])


__all__ = ["SliceSet", "Stack", "UnpairedBatches", "context_windows", "load_domain", "median_plane_spacing", "usable_slices"]
