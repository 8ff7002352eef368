"""An exponential moving average of the generators' weights (Polyak averaging, as in Yazici et al., ICLR 2019).

The adversarial game makes the last iterate jitter from step to step; the average of recent iterates is the model
the user gets: samples, the safety net and every checkpoint's ``model/`` weights are the averaged ones, while the
optimizer keeps stepping the raw weights (stored beside them so that ``--resume`` continues exactly).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

RAW = "train_weights"  # checkpoint tensor prefix of the raw (optimised) generator weights when ``model/`` holds the average


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay used for the ``updates``-th update (1-based): warmed up as min(decay, (1 + n) / (10 + n)), so the
    first iterates (the untrained prior) do not dominate a short run's average."""
    return min(decay, (1 + updates) / (10 + updates))


class WeightAverage:
    """The running average of ``modules``' parameters (buffers are shared: the prior's and calibration's tables)."""

    def __init__(self, modules: dict[str, nn.Module], decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1); got {decay}")
        self.decay = decay
        self.params = {f"{m}.{n}": p for m, module in modules.items() for n, p in module.named_parameters()}
        self.average = {k: p.detach().clone() for k, p in self.params.items()}
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        """average <- d * average + (1 - d) * weights, after each optimizer step."""
        self.updates += 1
        w = 1.0 - ema_decay_at(self.decay, self.updates)
        torch._foreach_lerp_(list(self.average.values()), [p.detach() for p in self.params.values()], w)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The averaged weights in the modules for the duration (the raw ones restored after, even on error)."""
        raw = {k: p.detach().clone() for k, p in self.params.items()}
        self.install()
        try:
            yield
        finally:
            with torch.no_grad():
                for k, p in self.params.items():
                    p.copy_(raw[k])

    @torch.no_grad()
    def install(self) -> None:
        """Put the averaged weights into the modules for good (training is over)."""
        for k, p in self.params.items():
            p.copy_(self.average[k])

    def into_checkpoint(self, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        """``tensors`` holds the raw weights under ``prefix/``: put the average there (what inference loads) and the
        raw weights under ``RAW/``."""
        for k, avg in self.average.items():
            tensors[f"{RAW}/{k}"] = tensors[f"{prefix}/{k}"]
            tensors[f"{prefix}/{k}"] = avg.detach().cpu().contiguous()

    @torch.no_grad()
    def from_checkpoint(self, tensors: dict[str, torch.Tensor], updates: int) -> None:
        """After the modules were loaded from ``prefix/`` (the average): take that as the average and put the raw
        weights back into the modules. A checkpoint written without averaging starts the average from its weights."""
        self.updates = updates
        for k, p in self.params.items():
            self.average[k].copy_(p.detach())
            raw = tensors.get(f"{RAW}/{k}")
            if raw is not None:
                p.copy_(raw.to(p.device))
