"""Unpaired slice data: decode and preprocess once, cache in memory, sample T1 and T2 independently."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import DataConfig
from ..io import is_nifti, list_inputs, read_image, read_nifti
from ..io.nifti import canonical_spacing, slices, to_canonical
from ..io.volume import Volume
from .augment import random_crop, random_flip_affine
from .preprocess import fit_to_square, foreground_fraction, n4_correct, normalize, resample_volume, robust_range

log = logging.getLogger(__name__)


@dataclass
class PreparedVolume:
    """A volume in canonical orientation, in model space [-1, 1], with what is needed to undo it."""

    data: np.ndarray  # canonical (R, A, S), possibly resampled, normalised
    lo: float
    hi: float
    canonical_shape: tuple[int, int, int]  # before resampling


def prepare_volume(volume: Volume, cfg: DataConfig) -> PreparedVolume:
    data = to_canonical(volume.data, volume.affine)
    shape = tuple(int(s) for s in data.shape)
    spacing = canonical_spacing(volume.affine)
    if cfg.n4:
        data = n4_correct(data, spacing)
    if cfg.spacing:
        data = resample_volume(data, spacing, cfg.spacing)
    lo, hi = robust_range(data, cfg.percentiles)
    return PreparedVolume(normalize(data, lo, hi), lo, hi, shape)  # type: ignore[arg-type]


@dataclass
class SliceSet:
    """Images of one domain, each fitted into image_size² in model space: (N, 1, S, S) float32."""

    images: torch.Tensor
    names: list[str]

    def __len__(self) -> int:
        return self.images.shape[0]


def _load_file(path: Path, cfg: DataConfig) -> list[tuple[str, np.ndarray]]:
    if is_nifti(path):
        prepared = prepare_volume(read_nifti(path), cfg)
        out = []
        for k, s in enumerate(slices(prepared.data, cfg.axis)):
            if foreground_fraction(s) >= max(cfg.min_foreground, 1e-6):
                out.append((f"{path.name}:{k}", fit_to_square(s, cfg.image_size)[0]))
        return out
    arr, _ = read_image(path)
    lo, hi = robust_range(arr, cfg.percentiles)
    return [(path.name, fit_to_square(normalize(arr, lo, hi), cfg.image_size)[0])]


def load_domain(path: str | Path, cfg: DataConfig, what: str = "input") -> SliceSet:
    """Read every image/volume under ``path`` (in parallel) into one cached SliceSet."""
    from ..errors import InputError

    files = list_inputs(path, what)
    workers = min(len(files), os.cpu_count() or 1, 8)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        parts = list(pool.map(lambda f: _load_file(f, cfg), files))
    items = [item for part in parts for item in part]
    if not items:
        raise InputError(f"{what} {path}: no slice has enough foreground (min_foreground={cfg.min_foreground})")
    names = [n for n, _ in items]
    images = torch.from_numpy(np.stack([a for _, a in items]))[:, None]
    log.info("%s: %d images from %d files at %d²", what, len(names), len(files), cfg.image_size)
    return SliceSet(images.contiguous(), names)


class UnpairedBatches:
    """Infinite unpaired sampling: T1 and T2 indices drawn independently, each image augmented on its own."""

    def __init__(self, t1: SliceSet, t2: SliceSet, cfg: DataConfig, batch_size: int, seed: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.t1, self.t2, self.cfg, self.batch_size = t1, t2, cfg, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        if c.flip or c.rotate_deg or c.scale or c.translate:
            x = random_flip_affine(x, self.generator, c.flip, c.rotate_deg, c.scale, c.translate)
        if c.patch_size:
            x = random_crop(x, c.patch_size, self.generator)
        return x

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        i1 = torch.randint(0, len(self.t1), (self.batch_size,), generator=self.generator)
        i2 = torch.randint(0, len(self.t2), (self.batch_size,), generator=self.generator)
        return self._augment(self.t1.images[i1]), self._augment(self.t2.images[i2])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
