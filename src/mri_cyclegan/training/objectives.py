"""The two CycleGAN objectives as modules, each run once per backward pass, so that each can be wrapped in
``DistributedDataParallel`` as it is (DDP expects one forward per backward; a generator is used two or three
times inside its objective)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig
from ..losses import cycle_loss, gan_loss, identity_loss


class GeneratorObjective(nn.Module):
    """Both generators: fool the discriminators, come back after a round trip (and optionally leave the target
    contrast unchanged). The discriminators are arguments, not submodules: their weights are not trained here."""

    def __init__(self, g_t1_to_t2: nn.Module, g_t2_to_t1: nn.Module, tc: TrainConfig) -> None:
        super().__init__()
        self.g_t1_to_t2, self.g_t2_to_t1 = g_t1_to_t2, g_t2_to_t1
        self.gan, self.lam, self.lam_id = tc.gan_loss, tc.lambda_cycle, tc.lambda_cycle * tc.lambda_identity

    def forward(self, real_t1: torch.Tensor, real_t2: torch.Tensor, d_t1: nn.Module, d_t2: nn.Module):
        fake_t2 = self.g_t1_to_t2(real_t1)  # (N, K, P, P)
        fake_t1 = self.g_t2_to_t1(real_t2)
        rec_t1 = self.g_t2_to_t1(fake_t2)
        rec_t2 = self.g_t1_to_t2(fake_t1)
        loss_gan = gan_loss(d_t2(fake_t2), True, self.gan) + gan_loss(d_t1(fake_t1), True, self.gan)
        loss_cycle = self.lam * (cycle_loss(rec_t1, real_t1) + cycle_loss(rec_t2, real_t2))
        loss_idt = torch.zeros((), device=real_t1.device)
        if self.lam_id > 0:
            loss_idt = self.lam_id * (identity_loss(self.g_t1_to_t2(real_t2), real_t2) + identity_loss(self.g_t2_to_t1(real_t1), real_t1))
        return loss_gan + loss_cycle + loss_idt, loss_gan, loss_cycle, loss_idt, fake_t1, fake_t2


class DiscriminatorObjective(nn.Module):
    """Both discriminators: real vs (pooled) fake, one pass over the concatenated batch per contrast."""

    def __init__(self, d_t1: nn.Module, d_t2: nn.Module, tc: TrainConfig) -> None:
        super().__init__()
        self.d_t1, self.d_t2 = d_t1, d_t2
        self.gan = tc.gan_loss

    def forward(self, real_t1: torch.Tensor, real_t2: torch.Tensor, fake_t1: torch.Tensor, fake_t2: torch.Tensor) -> torch.Tensor:
        loss = torch.zeros((), device=real_t1.device)
        for d, real, fake in ((self.d_t1, real_t1, fake_t1), (self.d_t2, real_t2, fake_t2)):
            logits = d(torch.cat([real, fake], 0))
            n = real.shape[0]
            loss = loss + 0.5 * (gan_loss(logits[:n], True, self.gan) + gan_loss(logits[n:], False, self.gan))
        return loss
