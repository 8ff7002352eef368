import math

import pytest
import torch

from mri_cyclegan.losses import cycle_loss, gan_loss, identity_loss


def test_lsgan_by_hand():
    logits = torch.tensor([0.0, 0.5, 2.0])
    assert gan_loss(logits, True, "lsgan").item() == pytest.approx((1 + 0.25 + 1) / 3)
    assert gan_loss(logits, False, "lsgan").item() == pytest.approx((0 + 0.25 + 4) / 3)


def test_bce_by_hand():
    logits = torch.tensor([0.0, 2.0])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731  softplus
    assert gan_loss(logits, True, "bce").item() == pytest.approx((sp(0) + sp(-2)) / 2, rel=1e-6)
    assert gan_loss(logits, False, "bce").item() == pytest.approx((sp(0) + sp(2)) / 2, rel=1e-6)


def test_l1_losses_by_hand():
    a, b = torch.tensor([1.0, -1.0, 0.5]), torch.tensor([0.0, 0.0, 0.5])
    assert cycle_loss(a, b).item() == pytest.approx(2 / 3)
    assert identity_loss(a, b).item() == pytest.approx(2 / 3)


def test_unknown_loss():
    with pytest.raises(ValueError):
        gan_loss(torch.zeros(1), True, "hinge")


def test_rim_weighted_anchor_counts_only_the_outline_rim_more():
    """A translation that moves only the 3-pixel rim inside the head outline costs 1 + w times as much with
    ``anchor_rim`` w; one that moves only the interior costs the same (sigma small, so blur hardly mixes them)."""
    from mri_cyclegan.losses import anchor_loss, outline_rim

    x = -torch.ones(1, 1, 40, 40)
    x[..., 8:32, 8:32] = 0.5  # a 24 x 24 'head' in air
    rim = outline_rim(x)
    assert rim.sum() == 24 * 24 - 18 * 18 and rim[..., 20, 20] == 0 and rim[..., 8, 20] == 1 and rim[..., 5, 5] == 0
    prior = x.clone()
    moved_rim = prior + 0.3 * rim
    interior = torch.zeros_like(x)
    interior[..., 16:24, 16:24] = 0.3
    moved_inside = prior + interior
    for moved, factor in ((moved_rim, 11.0), (moved_inside, 1.0)):
        plain = anchor_loss(moved, prior, sigma=0.5)
        weighted = anchor_loss(moved, prior, sigma=0.5, rim=rim, rim_weight=10.0)
        assert float(weighted / plain) == pytest.approx(factor, rel=0.1)  # the blur leaks a little across the rim
    # a change one pixel wide at the outline (the outermost layer alternately darker and brighter) is mostly blurred
    # away by the low-pass; the rim is also held pixel by pixel
    checker = (torch.arange(40).view(-1, 1) + torch.arange(40).view(1, -1)) % 2 * 2 - 1.0
    outermost = rim * (outline_rim(x, width=1) > 0)
    flicker = prior + 0.3 * outermost * checker
    plain = anchor_loss(flicker, prior, sigma=2.0)
    weighted = anchor_loss(flicker, prior, sigma=2.0, rim=rim, rim_weight=10.0)
    assert float(weighted - plain) == pytest.approx(10 * 0.3 * float(outermost.sum()) / x.numel(), rel=1e-4)
    assert float(weighted / plain) > 30


def test_the_rim_can_run_along_the_image_border():
    """Tissue cut by the patch's edge: without ``image_border`` only the outline next to background is rim; with it,
    the ``width`` pixels along each image edge are too, and a translation that darkens the tissue at the image edge
    then costs the rim weight there."""
    from mri_cyclegan.losses import anchor_loss, outline_rim

    x = -torch.ones(1, 1, 20, 20)
    x[..., 5:, :] = 0.5  # background above, tissue down to the bottom, left and right edges
    plain, border = outline_rim(x, 2), outline_rim(x, 2, image_border=True)
    assert plain.sum() == 2 * 20 and plain[..., 5:7, :].all()
    assert border[..., 5:7, :].all() and border[..., 18:, :].all() and border[..., 5:, :2].all() and border[..., 5:, 18:].all()
    assert border[..., 10, 10] == 0 and border[..., :5, :].sum() == 0  # neither the interior nor the background
    edge_dark = x.clone()
    edge_dark[..., 18:, 5:15] -= 0.5  # the tissue at the bottom edge darkened
    assert float(anchor_loss(edge_dark, x, 2.0, border, 10.0)) > 5 * float(anchor_loss(edge_dark, x, 2.0, plain, 10.0))


def test_patch_nce_is_low_when_each_place_keeps_its_features_and_high_when_places_move():
    """PatchNCE on orthonormal features of S places: a translation whose features stay at their places scores near 0,
    one that moves them (the places permuted, as a lesion or an edge moved elsewhere would) scores about 1 / tau."""
    from mri_cyclegan.losses import patch_nce_loss

    s, tau = 16, 0.07
    keys = torch.eye(s)[None]  # (1, S, S): place i has feature e_i
    kept = patch_nce_loss(keys.clone(), keys, tau)
    moved = patch_nce_loss(keys[:, torch.roll(torch.arange(s), 1)], keys, tau)
    assert kept.item() < 1e-4
    assert moved.item() == pytest.approx(1 / tau, rel=0.01)
    q = keys.clone().requires_grad_(True)
    k = keys.clone().requires_grad_(True)
    patch_nce_loss(q[:, torch.roll(torch.arange(s), 1)], k, tau).backward()
    assert q.grad.abs().sum() > 0 and k.grad is None  # the input's features (keys) are not trained through
