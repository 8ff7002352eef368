"""Training augmentation on batches: random flips and a small random affine. Randomness is passed in."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_flip_affine(
    x: torch.Tensor,
    generator: torch.Generator,
    flip: bool = True,
    rotate_deg: float = 5.0,
    scale: float = 0.05,
    translate: float = 0.03,
) -> torch.Tensor:
    """Apply an independent random left-right flip and affine to each image of ``x`` (N, 1, H, W).

    Background (-1) fills the area moved in from outside.
    """
    n = x.shape[0]

    def uniform(r: float) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * r

    angle = uniform(math.radians(rotate_deg))
    s = 1 + uniform(scale)
    tx, ty = uniform(2 * translate), uniform(2 * translate)
    sign = torch.ones(n)
    if flip:
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack(
        [torch.stack([cos * sign, -sin, tx], 1), torch.stack([sin * sign, cos, ty], 1)], 1
    ).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
