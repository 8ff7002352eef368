"""The two CycleGAN objectives as modules, each run once per backward pass, so that each can be wrapped in
``DistributedDataParallel`` as it is (DDP expects one forward per backward; a generator is used two or three
times inside its objective)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig
from ..losses import anchor_loss, cycle_loss, gan_loss, identity_loss, outline_rim, paired_loss, structure_loss


class GeneratorObjective(nn.Module):
    """Both generators: fool the discriminators, come back after a round trip (and optionally leave the target
    contrast unchanged); stay faithful to the input: the low-pass of each translation held to the lookup table's
    (``lambda_anchor``, generators with a prior only) and the input's edges kept (``lambda_structure``). When the
    last ``n_paired`` samples of both batches are co-registered pairs (the same place in both contrasts), each of
    their translations is also held to the other contrast's truth (L1, ``lambda_paired``), and the faithfulness terms
    (which stand in for a truth that unpaired data lacks) apply to the unpaired samples only.
    The discriminators are arguments, not submodules: their weights are not trained here."""

    def __init__(self, g_t1_to_t2: nn.Module, g_t2_to_t1: nn.Module, tc: TrainConfig) -> None:
        super().__init__()
        self.g_t1_to_t2, self.g_t2_to_t1 = g_t1_to_t2, g_t2_to_t1
        self.gan, self.lam, self.lam_id = tc.gan_loss, tc.lambda_cycle, tc.lambda_cycle * tc.lambda_identity
        self.lam_anchor = tc.lambda_anchor if getattr(g_t1_to_t2, "prior", None) is not None else 0.0
        self.sigma, self.lam_structure, self.rim_weight = tc.anchor_sigma, tc.lambda_structure, tc.anchor_rim
        self.rim_width, self.rim_border = tc.anchor_rim_width, tc.anchor_rim_border
        self.lam_paired = tc.lambda_paired

    def faithful(self, real_t1: torch.Tensor, real_t2: torch.Tensor, fake_t1: torch.Tensor, fake_t2: torch.Tensor) -> torch.Tensor:
        """Anchor on the prior and structure kept, summed over both directions (0 when both weights are 0)."""
        loss = torch.zeros((), device=real_t1.device)
        for g, real, fake in ((self.g_t1_to_t2, real_t1, fake_t2), (self.g_t2_to_t1, real_t2, fake_t1)):
            if self.lam_anchor > 0:
                with torch.no_grad():
                    lut = g.prior(real)
                rim = outline_rim(real, self.rim_width, image_border=self.rim_border) if self.rim_weight else None
                loss = loss + self.lam_anchor * anchor_loss(fake, lut, self.sigma, rim, self.rim_weight)
            if self.lam_structure > 0:
                loss = loss + self.lam_structure * structure_loss(real, fake)
        return loss

    def forward(self, real_t1: torch.Tensor, real_t2: torch.Tensor, d_t1: nn.Module, d_t2: nn.Module, n_paired: int = 0):
        fake_t2 = self.g_t1_to_t2(real_t1)  # (N, K, P, P)
        fake_t1 = self.g_t2_to_t1(real_t2)
        rec_t1 = self.g_t2_to_t1(fake_t2)
        rec_t2 = self.g_t1_to_t2(fake_t1)
        loss_gan = gan_loss(d_t2(fake_t2), True, self.gan) + gan_loss(d_t1(fake_t1), True, self.gan)
        loss_cycle = self.lam * (cycle_loss(rec_t1, real_t1) + cycle_loss(rec_t2, real_t2))
        loss_idt = torch.zeros((), device=real_t1.device)
        if self.lam_id > 0:
            loss_idt = self.lam_id * (identity_loss(self.g_t1_to_t2(real_t2), real_t2) + identity_loss(self.g_t2_to_t1(real_t1), real_t1))
        u = real_t1.shape[0] - n_paired  # the unpaired samples come first
        loss_faith = self.faithful(real_t1[:u], real_t2[:u], fake_t1[:u], fake_t2[:u]) if u else torch.zeros((), device=real_t1.device)
        loss_paired = torch.zeros((), device=real_t1.device)
        if n_paired:
            loss_paired = self.lam_paired * (paired_loss(fake_t2[u:], real_t2[u:]) + paired_loss(fake_t1[u:], real_t1[u:]))
        loss = loss_gan + loss_cycle + loss_idt + loss_faith + loss_paired
        return loss, loss_gan, loss_cycle, loss_idt, loss_faith, loss_paired, fake_t1, fake_t2


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
