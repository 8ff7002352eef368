"""Slice data: decode and preprocess once, keep in memory, sample T1 and T2 patches independently (unpaired), and,
when the user has them, patches of co-registered T1/T2 pairs at the same place (paired)."""

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
    _classes: object = field(default=None, init=False, repr=False)  # cache of tissue_classes()

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

    def tissue_classes(self):
        """The set's CSF/GM/WM mixture (:func:`mri_cyclegan.baselines.tissue_classes` of :meth:`tissue_values`), for the
        safety net and the tissue-balanced discriminators; fitted once."""
        from ..baselines import tissue_classes

        if self._classes is None:
            self._classes = tissue_classes(self.tissue_values())
        return self._classes

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


def _source(path: Path, vol: Volume, geom) -> dict:
    """What a file was (Stack.source, for the model card): shape, spacing, intensity window, format."""
    name = path.name.lower()
    fmt = "nii.gz" if name.endswith(".nii.gz") else path.suffix.lower().lstrip(".") or "dicom"
    return {"shape": list(geom.file_shape), "spacing": [round(s, 4) for s in vol.spacing] if geom.is_volume else None,
            "window": [float(geom.lo), float(geom.hi)], "format": "dicom" if is_dicom(path) else fmt}


def _load_file(path: Path, pre: Preprocessor, min_foreground: float) -> Stack:
    vol = read_any(path)
    stack, geom = pre.forward(vol)
    return Stack(path.name, torch.from_numpy(stack).half(), usable_slices(stack, min_foreground), _source(path, vol, geom))


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


def augmented_patches(windows: list[torch.Tensor], size: tuple[int, int], cfg: DataConfig, generator: torch.Generator, rank: int = 0,
                      per_rank: int | None = None) -> torch.Tensor:
    """One training patch per (K, h, w) window (:func:`foreground_patches`), each augmented on its own (one flip and
    affine for all its channels), cut with a margin so that rotation/scaling never pulls in empty corners; under DDP
    only this rank's ``per_rank`` share of them is returned. (N, K, size[0], size[1])."""
    margin = 0 if not (cfg.rotate_deg or cfg.scale or cfg.translate) else max(2, round(0.125 * max(size)))
    big = foreground_patches(windows, (size[0] + 2 * margin, size[1] + 2 * margin), generator)
    if cfg.flip or cfg.rotate_deg or cfg.scale or cfg.translate:
        big = random_flip_affine(big, generator, cfg.flip, cfg.rotate_deg, cfg.scale, cfg.translate)
    n = per_rank or big.shape[0]
    out = big[rank * n : (rank + 1) * n]
    return out[:, :, margin : margin + size[0], margin : margin + size[1]].contiguous()


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

    def _draw(self, data: SliceSet) -> torch.Tensor:
        idx = torch.randint(0, len(data), (self.batch_size * self.world_size,), generator=self.generator).tolist()
        return augmented_patches(data.windows(idx), self.size, self.cfg, self.generator, self.rank, self.batch_size)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, K, P, P) T1 and T2 batches."""
        return self._draw(self.t1), self._draw(self.t2)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])


@dataclass
class PairedSet:
    """Co-registered T1/T2 files of the same subjects (or slices), each pair on one model-space grid: a T1 window and
    the T2 window at the same index show the same anatomy at the same place."""

    t1: SliceSet
    t2: SliceSet

    def __len__(self) -> int:
        return len(self.t1)

    def windows(self, indices: list[int]) -> list[torch.Tensor]:
        """(2K, h, w) per index: the T1 window's channels, then the T2 window's."""
        return [torch.cat([self.t1.window(i), self.t2.window(i)], 0) for i in indices]


def paired_files(t1: str | Path | list[Path], t2: str | Path | list[Path], what: str = "--paired-t1/--paired-t2") -> list[tuple[Path, Path]]:
    """T1 and T2 files matched by name (:func:`mri_cyclegan.io.files.match_pairs`), each pair checked to lie on one
    voxel grid (same shape; for volumes the same affine), so that the same index is the same place in both after the
    same preprocessing. An InputError naming both files otherwise. Reads the files: ``train`` calls it before it
    touches the run folder."""
    from ..errors import InputError
    from ..io.files import match_pairs

    pairs = match_pairs(_files(t1, what), _files(t2, what), ("--paired-t1 file", "--paired-t2 file"), "t1/sub01.nii.gz and t2/sub01.nii.gz")
    for f1, f2 in pairs:
        v1, v2 = read_any(f1), read_any(f2)
        if v1.shape != v2.shape or not np.allclose(v1.affine, v2.affine, atol=1e-3):
            raise InputError(f"{what}: {f1.name} ({'x'.join(map(str, v1.shape))}) and {f2.name} ({'x'.join(map(str, v2.shape))}) are not on "
                             "one voxel grid; paired training needs each pair co-registered and resampled to one grid (e.g. with "
                             "ANTs, FSL FLIRT or SimpleITK), or leave them out of --paired-t1/--paired-t2")
    return pairs


def load_pairs(pairs: list[tuple[Path, Path]], cfg: DataConfig, what: str = "--paired-t1/--paired-t2") -> PairedSet:
    """The (T1, T2) file pairs of :func:`paired_files` (which checked them), each file read through the same
    preprocessing as the unpaired sets; the slices usable in both files of a pair are kept."""
    from ..errors import InputError

    pre = Preprocessor(cfg)
    stacks1, stacks2 = [], []
    for f1, f2 in pairs:
        v1, v2 = read_any(f1), read_any(f2)
        (a, g1), (b, g2) = pre.forward(v1), pre.forward(v2)
        assert a.shape == b.shape, (f1, f2)  # one grid in, one grid out (paired_files checked it)
        both = sorted(set(usable_slices(a, cfg.min_foreground)) & set(usable_slices(b, cfg.min_foreground)))
        stacks1.append(Stack(f1.name, torch.from_numpy(a).half(), both, _source(f1, v1, g1)))
        stacks2.append(Stack(f2.name, torch.from_numpy(b).half(), both, _source(f2, v2, g2)))
    out = PairedSet(SliceSet(stacks1, cfg.context_slices), SliceSet(stacks2, cfg.context_slices))
    if not len(out):
        raise InputError(f"{what}: no slice has enough foreground in both files of a pair (min_foreground={cfg.min_foreground})")
    log.info("paired: %d slices from %d co-registered T1/T2 pairs", len(out), len(pairs))
    return out


class PairedBatches:
    """Infinite paired sampling: a pair's slice, one patch at the same place in both contrasts, augmented with the
    same flip and affine (so the two stay registered). Its own seeded generator (saved in checkpoints); sharded over
    DDP ranks like :class:`UnpairedBatches`."""

    def __init__(self, pairs: PairedSet, cfg: DataConfig, size: tuple[int, int], batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.pairs, self.cfg, self.size, self.batch_size = pairs, cfg, size, batch_size
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, K, P, P) T1 and T2 patches of the same places."""
        idx = torch.randint(0, len(self.pairs), (self.batch_size * self.world_size,), generator=self.generator).tolist()
        both = augmented_patches(self.pairs.windows(idx), self.size, self.cfg, self.generator, self.rank, self.batch_size)
        k = both.shape[1] // 2
        return both[:, :k].contiguous(), both[:, k:].contiguous()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])


__all__ = ["PairedBatches", "PairedSet", "SliceSet", "Stack", "UnpairedBatches", "load_pairs", "paired_files", "context_windows", "load_domain", "median_plane_spacing", "usable_slices"]
