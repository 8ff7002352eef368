"""CycleGAN losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gan_loss(logits: torch.Tensor, target_is_real: bool, kind: str = "lsgan") -> torch.Tensor:
    """Adversarial loss on discriminator logits: LSGAN (mean squared error to 1/0) or BCE-with-logits."""
    logits = logits.float()
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    raise ValueError(f"gan loss must be lsgan or bce; got {kind!r}")


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between an image and its round trip through both generators."""
    return F.l1_loss(reconstructed.float(), real.float())


def identity_loss(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between a generator's output on an image already in its target contrast and that image."""
    return F.l1_loss(same.float(), real.float())
