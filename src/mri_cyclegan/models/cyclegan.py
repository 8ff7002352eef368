"""The CycleGAN container: two generators (one per direction) and two discriminators (one per contrast)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import ModelConfig
from ..directions import Direction
from .networks import Generator, PatchDiscriminator, ResnetGenerator, UnetGenerator, init_weights, last_conv


def build_generator(cfg: ModelConfig, train_size: int, channels: int = 1) -> Generator:
    """``channels`` = K slices in and out (2.5D); the centre channel is the translated slice."""
    if cfg.generator == "resnet":
        backbone: nn.Module = ResnetGenerator(cfg.ngf, cfg.n_blocks, channels, channels, cfg.upsample)
    else:
        backbone = UnetGenerator(cfg.ngf, cfg.resolved_unet_downs(train_size), channels, channels)
    return Generator(backbone, use_prior=cfg.prior != "none", unmix_outline=cfg.unmix_outline, residual_bound=cfg.residual_bound)


class PatchSampleMLP(nn.Module):
    """PatchNCE's projection heads (CUT): one two-layer MLP per compared encoder layer, features to 256-d, L2-normalised.
    Trained with the generators; translation never uses them."""

    def __init__(self, channels: list[int], dim: int = 256) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, dim), nn.ReLU(), nn.Linear(dim, dim)) for c in channels)

    def forward(self, i: int, features: torch.Tensor) -> torch.Tensor:
        """(N, S, C) features of layer ``i`` -> (N, S, dim), unit length."""
        return nn.functional.normalize(self.mlps[i](features), dim=-1)


class CycleGAN(nn.Module):
    """Generators map (N, K, H, W) stacks of K neighbouring slices to K slices of the other contrast, so the
    cycle closes on stacks; discriminators judge stacks (K = 1: plain 2D CycleGAN)."""

    def __init__(self, cfg: ModelConfig, train_size: int, seed: int = 0, channels: int = 1, nce: bool = False) -> None:
        super().__init__()
        self.cfg = cfg
        self.train_size = train_size
        self.channels = channels
        self.g_t1_to_t2 = build_generator(cfg, train_size, channels)
        self.g_t2_to_t1 = build_generator(cfg, train_size, channels)
        self.d_t1 = PatchDiscriminator(cfg.ndf, cfg.n_layers_d, channels)  # judges real vs fake T1
        self.d_t2 = PatchDiscriminator(cfg.ndf, cfg.n_layers_d, channels)  # judges real vs fake T2
        self.nce_t1_to_t2 = PatchSampleMLP(self.g_t1_to_t2.backbone.nce_channels()) if nce else None  # PatchNCE heads (lambda_nce)
        self.nce_t2_to_t1 = PatchSampleMLP(self.g_t2_to_t1.backbone.nce_channels()) if nce else None
        self.reset_parameters(seed)

    @classmethod
    def from_config(cls, config, seed: int = 0) -> CycleGAN:
        return cls(config.model, config.data.train_size, seed, config.data.context_slices, nce=config.train.lambda_nce > 0)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (inference pads to it)."""
        return self.cfg.size_multiple(self.train_size)

    def reset_parameters(self, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)  # N(0, 0.02) init from this seed only
        for net in (self.g_t1_to_t2, self.g_t2_to_t1, self.d_t1, self.d_t2, *self.nce_heads()):
            init_weights(net, gen)
        if self.cfg.prior != "none":
            for g in (self.g_t1_to_t2, self.g_t2_to_t1):
                conv = last_conv(g.backbone)
                nn.init.zeros_(conv.weight)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)

    def generator(self, direction: Direction | str) -> Generator:
        return self.g_t1_to_t2 if Direction.parse(direction) is Direction.T1_TO_T2 else self.g_t2_to_t1

    def set_priors(self, lut_t1_to_t2: np.ndarray, lut_t2_to_t1: np.ndarray) -> None:
        for g, lut in ((self.g_t1_to_t2, lut_t1_to_t2), (self.g_t2_to_t1, lut_t2_to_t1)):
            if g.prior is not None:
                g.prior.lut.copy_(torch.as_tensor(lut, dtype=torch.float32))

    def generators(self) -> list[nn.Module]:
        return [self.g_t1_to_t2, self.g_t2_to_t1]

    def discriminators(self) -> list[nn.Module]:
        return [self.d_t1, self.d_t2]

    def nce_heads(self) -> list[nn.Module]:
        """PatchNCE's projection heads (T1->T2, T2->T1), trained with the generators; empty without ``lambda_nce``."""
        return [h for h in (self.nce_t1_to_t2, self.nce_t2_to_t1) if h is not None]
