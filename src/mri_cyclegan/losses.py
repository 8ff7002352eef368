"""CycleGAN losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data.preprocess import FOREGROUND


def gan_loss(logits: torch.Tensor, target_is_real: bool, kind: str = "lsgan", weight: torch.Tensor | None = None) -> torch.Tensor:
    """Adversarial loss on discriminator logits: LSGAN (mean squared error to 1/0) or BCE-with-logits; ``weight``
    (broadcast to the logits, mean 1: :func:`tissue_balanced_weights`) weighs each patch's term."""
    logits = logits.float()
    target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
    if kind == "lsgan":
        return F.mse_loss(logits, target) if weight is None else ((logits - target) ** 2 * weight).mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target, weight=weight)
    raise ValueError(f"gan loss must be lsgan or bce; got {kind!r}")


def tissue_labels(x: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """(N, H, W) class of each pixel of the (N, 1, H, W) model-space images ``x``: 0 = no signal (at or below
    FOREGROUND), then 1.. in intensity order between the sorted class ``bounds`` (:meth:`TissueClasses.boundaries`)."""
    x = x[:, 0].float().contiguous()
    return torch.where(x <= FOREGROUND, 0, torch.bucketize(x, bounds.to(x)) + 1)


def tissue_balanced_weights(labels: torch.Tensor, n_classes: int, shape: tuple[int, int]) -> torch.Tensor:
    """(N, 1, h, w) weights for a discriminator's (N, 1, h, w) logits on images whose pixels have these (N, H, W)
    ``labels``: each logit stands for the classes in its part of the image (the one-hot labels averaged down to the
    logits' grid), and every class present in the batch gets the same total weight, so what a discriminator learns
    from one set holding more of a tissue than the other is cancelled. Mean 1 (an unweighted loss when every class is
    equally common)."""
    onehot = F.one_hot(labels.long(), n_classes).permute(0, 3, 1, 2).float()
    frac = F.adaptive_avg_pool2d(onehot, shape)  # (N, C, h, w): each logit's share of each class
    freq = frac.mean((0, 2, 3))
    present = freq > 1e-8
    inverse = torch.where(present, 1.0 / (present.sum() * freq.clamp_min(1e-8)), torch.zeros_like(freq))
    return (frac * inverse[None, :, None, None]).sum(1, keepdim=True)


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between an image and its round trip through both generators."""
    return F.l1_loss(reconstructed.float(), real.float())


def identity_loss(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L1 between a generator's output on an image already in its target contrast and that image."""
    return F.l1_loss(same.float(), real.float())


def paired_loss(translated: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """L1 between the translation of a co-registered patch and the same place in the other contrast (its truth)."""
    return F.l1_loss(translated.float(), truth.float())


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian low-pass of (N, C, H, W) per channel (truncated at 3 sigma, reflect padding)."""
    r = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    n, c, h, w = x.shape
    y = x.reshape(n * c, 1, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="reflect" if w > r else "replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="reflect" if h > r else "replicate"), k.view(1, 1, -1, 1))
    return y.reshape(n, c, h, w)


def rim_of(dark: torch.Tensor, width: int, image_border: bool = False) -> torch.Tensor:
    """The one definition of a rim: (N, 1, H, W) mask of background (nonzero = background) -> (N, 1, H, W) float
    mask of the non-background pixels within ``width`` pixels (8-connected, a square neighbourhood) of it. With
    ``image_border``, what lies beyond the image's edge counts as background too; without, as nothing. The training
    anchor (:func:`outline_rim`) and the safety net (:func:`mri_cyclegan.faithfulness.drift`) both use it."""
    dark = (dark != 0).float()
    outside = 1.0 if image_border else 0.0
    near = F.max_pool2d(F.pad(dark, (width,) * 4, value=outside), 2 * width + 1, stride=1)
    return near * (1.0 - dark)


def outline_rim(source: torch.Tensor, width: int = 3, threshold: float = FOREGROUND, image_border: bool = False) -> torch.Tensor:
    """(N, K, H, W) model-space input -> (N, 1, H, W) float mask of the ``width``-pixel rim of signal next to the
    background (pixels at or below ``threshold``) of the centre slice (:func:`rim_of`). With ``image_border``,
    signal within ``width`` pixels of the image's edge counts too: where the generator has the least context."""
    c = source[:, source.shape[1] // 2 : source.shape[1] // 2 + 1].float()
    return rim_of(c <= threshold, width, image_border)


def anchor_loss(translated: torch.Tensor, prior: torch.Tensor, sigma: float = 2.0, rim: torch.Tensor | None = None,
                rim_weight: float = 0.0) -> torch.Tensor:
    """L1 between the low-pass of a translation and the low-pass of the lookup table's translation of the same input:
    the learned residual may add detail finer than ``sigma`` pixels, but may not move tissue intensities (a tissue
    class, a lesion larger than sigma, the CSF around the brain) away from where the prior put them. With ``rim``
    (:func:`outline_rim`) and ``rim_weight``, the rim is also held pixel by pixel, without the low-pass (a change one
    pixel wide, such as darkening the outermost partial-volume layer, is mostly blurred away): ``rim_weight`` times
    the mean of ``|translated - prior|`` over the rim's pixels, counted over the whole image like the first term."""
    low = (gaussian_blur(translated.float(), sigma) - gaussian_blur(prior.float(), sigma)).abs().mean()
    if rim is None or rim_weight == 0:
        return low
    return low + rim_weight * ((translated.float() - prior.float()).abs() * rim).mean()


def structure_loss(source: torch.Tensor, translated: torch.Tensor, eps: float = 0.05) -> torch.Tensor:
    """Contrast-independent structure term: 1 - squared cosine between the image gradients of the input and of its
    translation (normalised gradient fields, Haber & Modersitzki 2006), weighted by the input's edge strength.
    Squared, so an edge that flips polarity (T1 -> T2 does) counts as kept; an edge moved, blurred away or turned
    sideways raises it. ``eps`` (model-space units) keeps flat noisy regions from counting as edges."""
    def grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float()
        gx = x[..., :-1, 1:] - x[..., :-1, :-1]
        gy = x[..., 1:, :-1] - x[..., :-1, :-1]
        return gx, gy

    sx, sy = grads(source)
    tx, ty = grads(translated)
    dot = sx * tx + sy * ty
    ns, nt = sx * sx + sy * sy, tx * tx + ty * ty
    cos2 = dot * dot / ((ns + eps * eps) * (nt + eps * eps))
    weight = ns / (ns + eps * eps)  # ~1 on the input's edges, ~0 where it is flat
    per_sample = ((1 - cos2) * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1e-6)
    return per_sample.mean()  # a mean over samples: equal shards under DDP average to the whole batch's value


def patch_nce_loss(query: torch.Tensor, key: torch.Tensor, tau: float = 0.07) -> torch.Tensor:
    """PatchNCE (Park et al., CUT, ECCV 2020) on (N, S, C) L2-normalised features of S places of each image: the
    translation's feature at a place (``query``) must be nearer to the input's feature at the same place (``key``)
    than to the input's features at the other S - 1 places (InfoNCE, temperature ``tau``). The keys are not trained
    through. 0 would mean each place is recognised with certainty; log(S) is chance."""
    logits = torch.bmm(query.float(), key.detach().float().transpose(1, 2)) / tau  # (N, S, S): the diagonal are the positives
    n, s, _ = logits.shape
    target = torch.arange(s, device=logits.device).expand(n, s)
    return F.cross_entropy(logits.reshape(n * s, s), target.reshape(n * s))
