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
