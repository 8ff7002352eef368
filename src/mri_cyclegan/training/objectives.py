"""The two CycleGAN objectives as modules, each run once per backward pass, so that each can be wrapped in
``DistributedDataParallel`` as it is (DDP expects one forward per backward; a generator is used two or three
times inside its objective)."""

from __future__ import annotations

import torch
from torch import nn

from ..config import TrainConfig
from ..losses import (anchor_loss, cycle_loss, gan_loss, identity_loss, outline_rim, paired_loss, patch_nce_loss, structure_loss,
                      tissue_balanced_weights, tissue_labels)

NCE_PLACES = 256  # places per image and layer that PatchNCE compares (CUT's default)


def balance(images: torch.Tensor, bounds: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor | None:
    """Tissue-balanced weights for a discriminator's ``logits`` on (N, K, P, P) ``images`` (their centre slice classed
    by the contrast's class ``bounds``), or None (unweighted) without bounds."""
    if bounds is None:
        return None
    c = images.shape[1] // 2
    return tissue_balanced_weights(tissue_labels(images[:, c : c + 1], bounds), bounds.numel() + 2, tuple(logits.shape[-2:]))


class GeneratorObjective(nn.Module):
    """Both generators: fool the discriminators, come back after a round trip (and optionally leave the target
    contrast unchanged); stay faithful to the input: the low-pass of each translation held to the lookup table's
    (``lambda_anchor``, generators with a prior only) and the input's edges kept (``lambda_structure``). When the
    last ``n_paired`` samples of both batches are co-registered pairs (the same place in both contrasts), each of
    their translations is also held to the other contrast's truth (L1, ``lambda_paired``), and the faithfulness terms
    (which stand in for a truth that unpaired data lacks) apply to the unpaired samples only.
    With ``bounds`` (each contrast's tissue-class boundaries, ``balance_d``) the adversarial terms weigh every tissue
    class of the translation equally (:func:`~mri_cyclegan.losses.tissue_balanced_weights`).
    The discriminators are arguments, not submodules: their weights are not trained here."""

    def __init__(self, g_t1_to_t2: nn.Module, g_t2_to_t1: nn.Module, tc: TrainConfig, bounds: tuple[torch.Tensor, torch.Tensor] | None = None,
                 nce_heads: list[nn.Module] | None = None) -> None:
        super().__init__()
        self.bounds_t1, self.bounds_t2 = bounds if bounds is not None else (None, None)
        self.lam_nce = tc.lambda_nce if nce_heads else 0.0
        self.nce_heads = nn.ModuleList(nce_heads or [])  # (T1->T2, T2->T1) PatchNCE projection heads, trained here
        self.nce_places = torch.Generator().manual_seed(tc.seed + 5)  # which places PatchNCE compares (the trainer checkpoints it)
        self.g_t1_to_t2, self.g_t2_to_t1 = g_t1_to_t2, g_t2_to_t1
        self.gan, self.lam, self.lam_id = tc.gan_loss, tc.lambda_cycle, tc.lambda_cycle * tc.lambda_identity
        self.lam_anchor = tc.lambda_anchor if getattr(g_t1_to_t2, "prior", None) is not None else 0.0
        self.sigma, self.lam_structure, self.rim_weight = tc.anchor_sigma, tc.lambda_structure, tc.anchor_rim
        self.rim_width, self.rim_border = tc.anchor_rim_width, tc.anchor_rim_border
        self.lam_paired = tc.lambda_paired

    def faithful(self, real_t1: torch.Tensor, real_t2: torch.Tensor, fake_t1: torch.Tensor, fake_t2: torch.Tensor) -> torch.Tensor:
        """Anchor on the prior, structure kept and PatchNCE, summed over both directions (0 when their weights are 0)."""
        loss = torch.zeros((), device=real_t1.device)
        for g, real, fake in ((self.g_t1_to_t2, real_t1, fake_t2), (self.g_t2_to_t1, real_t2, fake_t1)):
            if self.lam_anchor > 0:
                with torch.no_grad():
                    lut = g.prior(real)
                rim = outline_rim(real, self.rim_width, image_border=self.rim_border) if self.rim_weight else None
                loss = loss + self.lam_anchor * anchor_loss(fake, lut, self.sigma, rim, self.rim_weight)
            if self.lam_structure > 0:
                loss = loss + self.lam_structure * structure_loss(real, fake)
        if self.lam_nce > 0:
            for g, head, real, fake in ((self.g_t1_to_t2, self.nce_heads[0], real_t1, fake_t2), (self.g_t2_to_t1, self.nce_heads[1], real_t2, fake_t1)):
                loss = loss + self.lam_nce * self.patch_nce(g, head, real, fake)
        return loss

    def patch_nce(self, g: nn.Module, head: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """PatchNCE between an input and its translation, both through ``g``'s own encoder, at :data:`NCE_PLACES` places
        per image (the same places in both), averaged over the compared layers."""
        keys, queries = g.backbone.encode(real), g.backbone.encode(fake)
        loss = torch.zeros((), device=real.device)
        for i, (k, q) in enumerate(zip(keys, queries)):
            hw = k.shape[2] * k.shape[3]
            places = torch.randperm(hw, generator=self.nce_places)[: min(NCE_PLACES, hw)].to(k.device)
            pick = lambda f: f.flatten(2)[:, :, places].transpose(1, 2)  # noqa: E731  (N, S, C)
            loss = loss + patch_nce_loss(head(i, pick(q)), head(i, pick(k)))
        return loss / len(keys)

    def forward(self, real_t1: torch.Tensor, real_t2: torch.Tensor, d_t1: nn.Module, d_t2: nn.Module, n_paired: int = 0):
        fake_t2 = self.g_t1_to_t2(real_t1)  # (N, K, P, P)
        fake_t1 = self.g_t2_to_t1(real_t2)
        rec_t1 = self.g_t2_to_t1(fake_t2)
        rec_t2 = self.g_t1_to_t2(fake_t1)
        logits_t2, logits_t1 = d_t2(fake_t2), d_t1(fake_t1)
        loss_gan = (gan_loss(logits_t2, True, self.gan, balance(fake_t2, self.bounds_t2, logits_t2))
                    + gan_loss(logits_t1, True, self.gan, balance(fake_t1, self.bounds_t1, logits_t1)))
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
    """Both discriminators: real vs (pooled) fake, one pass over the concatenated batch per contrast. With ``bounds``
    (``balance_d``) every tissue class counts equally among the real patches and among the fake ones, so a
    discriminator gains nothing from one set holding more of a tissue than the other."""

    def __init__(self, d_t1: nn.Module, d_t2: nn.Module, tc: TrainConfig, bounds: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.d_t1, self.d_t2 = d_t1, d_t2
        self.gan = tc.gan_loss
        self.bounds_t1, self.bounds_t2 = bounds if bounds is not None else (None, None)

    def forward(self, real_t1: torch.Tensor, real_t2: torch.Tensor, fake_t1: torch.Tensor, fake_t2: torch.Tensor) -> torch.Tensor:
        loss = torch.zeros((), device=real_t1.device)
        for d, real, fake, bounds in ((self.d_t1, real_t1, fake_t1, self.bounds_t1), (self.d_t2, real_t2, fake_t2, self.bounds_t2)):
            logits = d(torch.cat([real, fake], 0))
            n = real.shape[0]
            loss = loss + 0.5 * (gan_loss(logits[:n], True, self.gan, balance(real, bounds, logits[:n]))
                                 + gan_loss(logits[n:], False, self.gan, balance(fake, bounds, logits[n:])))
        return loss
