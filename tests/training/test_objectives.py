"""Each objective term against a hand-computed value with tiny fixed networks: a swapped domain, generator,
discriminator or label changes the number."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mri_cyclegan.config import TrainConfig
from mri_cyclegan.training.objectives import DiscriminatorObjective, GeneratorObjective


class Affine(nn.Module):
    """x -> scale * x + shift (a fixed 'network')."""

    def __init__(self, scale: float, shift: float = 0.0) -> None:
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x + self.shift


A, B = 0.3, -0.2  # constant real T1 and real T2 patches
G12, G21 = Affine(2.0), Affine(1.0, 1.0)  # T1 -> T2 doubles, T2 -> T1 adds one
D1, D2 = Affine(1.0), Affine(3.0)  # the T1 discriminator passes its input, the T2 one triples it


def reals():
    return torch.full((2, 1, 4, 4), A), torch.full((2, 1, 4, 4), B)


@pytest.mark.parametrize("lambda_identity", [0.0, 0.5])
def test_generator_objective_terms_by_hand(lambda_identity):
    tc = TrainConfig(lambda_cycle=10.0, lambda_identity=lambda_identity, lambda_anchor=0.0, lambda_structure=0.0)
    obj = GeneratorObjective(G12, G21, tc)
    total, gan, cycle, idt, faith, paired, fake_t1, fake_t2 = obj(*reals(), D1, D2)
    fake_t2_v, fake_t1_v = 2 * A, B + 1  # G12(real T1), G21(real T2)
    assert torch.allclose(fake_t2, torch.tensor(fake_t2_v)) and torch.allclose(fake_t1, torch.tensor(fake_t1_v))
    # D_T2 judges the fake T2 and D_T1 the fake T1, both against the 'real' label (LSGAN)
    assert gan.item() == pytest.approx((3 * fake_t2_v - 1) ** 2 + (fake_t1_v - 1) ** 2)
    # rec T1 = G21(G12(T1)) compared with real T1, rec T2 = G12(G21(T2)) with real T2 (L1)
    assert cycle.item() == pytest.approx(10 * (abs(2 * A + 1 - A) + abs(2 * (B + 1) - B)))
    # identity: G12 on a real T2 should leave it, G21 on a real T1 should leave it
    assert idt.item() == pytest.approx(10 * lambda_identity * (abs(2 * B - B) + abs(A + 1 - A)))
    assert faith.item() == 0.0 and paired.item() == 0.0  # no pairs in the batch
    assert total.item() == pytest.approx(gan.item() + cycle.item() + idt.item())


def test_paired_term_by_hand_and_faithfulness_left_to_the_unpaired_samples():
    """The last n_paired samples are co-registered pairs: each translation of them is compared with the other
    contrast's patch (L1, x lambda_paired), each direction with its own truth; the anchor/structure terms see only the
    unpaired samples (for a pair the truth is known)."""
    from mri_cyclegan.losses import structure_loss

    g = torch.Generator().manual_seed(1)
    real_t1, real_t2 = torch.rand(3, 1, 12, 12, generator=g), torch.rand(3, 1, 12, 12, generator=g)
    tc = TrainConfig(lambda_cycle=0.0, lambda_anchor=0.0, lambda_structure=1.0, lambda_paired=7.0)
    g12, g21 = Affine(-1.0), Affine(1.0, 0.1)
    total, gan, cycle, idt, faith, paired, fake_t1, fake_t2 = GeneratorObjective(g12, g21, tc)(real_t1, real_t2, D1, D2, n_paired=1)
    expected = 7.0 * ((-real_t1[2:] - real_t2[2:]).abs().mean() + (real_t2[2:] + 0.1 - real_t1[2:]).abs().mean())
    assert paired.item() == pytest.approx(expected.item())
    crossed = 7.0 * ((-real_t1[2:] - real_t1[2:]).abs().mean() + (real_t2[2:] + 0.1 - real_t2[2:]).abs().mean())
    assert abs(crossed.item() - paired.item()) > 0.1 * paired.item()
    assert faith.item() == pytest.approx((structure_loss(real_t1[:2], fake_t2[:2]) + structure_loss(real_t2[:2], fake_t1[:2])).item())
    assert total.item() == pytest.approx(gan.item() + faith.item() + paired.item())
    # all samples paired: no faithfulness term at all
    *_, faith_all, paired_all, _, _ = GeneratorObjective(g12, g21, tc)(real_t1, real_t2, D1, D2, n_paired=3)
    assert faith_all.item() == 0.0 and paired_all.item() > 0


def test_discriminator_objective_by_hand():
    tc = TrainConfig()
    real_t1, real_t2 = reals()
    fake_t1, fake_t2 = torch.full_like(real_t1, 0.6), torch.full_like(real_t2, -0.4)
    loss = DiscriminatorObjective(D1, D2, tc)(real_t1, real_t2, fake_t1, fake_t2)
    expected = 0.5 * ((A - 1) ** 2 + 0.6**2) + 0.5 * ((3 * B - 1) ** 2 + (3 * -0.4) ** 2)  # real -> 1, fake -> 0
    assert loss.item() == pytest.approx(expected)


def test_structure_and_anchor_terms_are_wired_to_their_own_direction():
    from mri_cyclegan.losses import structure_loss

    tc = TrainConfig(lambda_cycle=0.0, lambda_anchor=0.0, lambda_structure=1.0)
    g = torch.Generator().manual_seed(0)
    real_t1, real_t2 = torch.rand(2, 1, 12, 12, generator=g), torch.rand(2, 1, 12, 12, generator=g)
    obj = GeneratorObjective(Affine(-1.0), Affine(1.0, 0.1), tc)
    *_, faith, _, fake_t1, fake_t2 = obj(real_t1, real_t2, D1, D2)
    # each translation's edges are compared with its own input's
    expected = structure_loss(real_t1, fake_t2) + structure_loss(real_t2, fake_t1)
    assert faith.item() == pytest.approx(expected.item())
    # a contrast flip (x -> -x) and a shift keep the edges; swapping the inputs (each fake against the other input) does not
    swapped = structure_loss(real_t2, fake_t2) + structure_loss(real_t1, fake_t1)
    assert swapped.item() > 3 * faith.item()


def test_rim_weighted_anchor_uses_each_direction_own_input_outline():
    from mri_cyclegan.losses import anchor_loss, outline_rim

    class WithPrior(Affine):
        def __init__(self, scale: float, shift: float = 0.0) -> None:
            super().__init__(scale, shift)
            self.prior = nn.Identity()  # the 'lookup table' keeps the input

    tc = TrainConfig(lambda_cycle=0.0, lambda_anchor=1.0, lambda_structure=0.0, anchor_rim=10.0)
    real_t1, real_t2 = -torch.ones(1, 1, 24, 24), -torch.ones(1, 1, 24, 24)
    real_t1[..., 4:20, 4:20], real_t2[..., 8:16, 6:18] = 0.4, 0.7  # two different outlines
    obj = GeneratorObjective(WithPrior(1.0, 0.2), WithPrior(1.0, -0.1), tc)
    *_, faith, _, fake_t1, fake_t2 = obj(real_t1, real_t2, D1, D2)
    expected = (anchor_loss(fake_t2, real_t1, tc.anchor_sigma, outline_rim(real_t1), 10.0)
                + anchor_loss(fake_t1, real_t2, tc.anchor_sigma, outline_rim(real_t2), 10.0))
    assert faith.item() == pytest.approx(expected.item())
    crossed = (anchor_loss(fake_t2, real_t1, tc.anchor_sigma, outline_rim(real_t2), 10.0)
               + anchor_loss(fake_t1, real_t2, tc.anchor_sigma, outline_rim(real_t1), 10.0))
    assert abs(crossed.item() - faith.item()) > 0.05 * faith.item()


def test_the_rim_anchor_reaches_as_deep_as_the_config_says():
    """``anchor_rim_width``: a translation that moves only pixels 5-7 deep inside the outline costs more with an
    8-pixel rim than with a 3-pixel rim (where only the low-pass term sees it)."""
    class WithPrior(Affine):
        def __init__(self) -> None:
            super().__init__(1.0, 0.0)
            self.prior = nn.Identity()

    real = -torch.ones(1, 1, 40, 40)
    real[..., 4:36, 4:36] = 0.4
    deep = torch.zeros_like(real)
    deep[..., 9:31, 9:31] = 0.3
    deep[..., 12:28, 12:28] = 0.0  # a frame 5-7 pixels inside the outline

    costs = {}
    for width in (3, 8):
        tc = TrainConfig(lambda_cycle=0.0, lambda_anchor=1.0, lambda_structure=0.0, anchor_rim=10.0, anchor_rim_width=width)
        obj = GeneratorObjective(WithPrior(), WithPrior(), tc)
        costs[width] = obj.faithful(real, real, real, real + deep).item()  # only T1 -> T2 moved
    assert costs[8] > 5 * costs[3]


def test_the_rim_anchor_runs_along_the_patch_edge_when_the_config_says():
    class WithPrior(Affine):
        def __init__(self) -> None:
            super().__init__(1.0, 0.0)
            self.prior = nn.Identity()

    real = torch.full((1, 1, 32, 32), 0.4)  # tissue everywhere: no outline inside the patch
    edge = torch.zeros_like(real)
    edge[..., :2, :] = 0.3  # the translation moves only the top two rows
    costs = {}
    for border in (False, True):
        tc = TrainConfig(lambda_cycle=0.0, lambda_anchor=1.0, lambda_structure=0.0, anchor_rim=10.0, anchor_rim_border=border)
        costs[border] = GeneratorObjective(WithPrior(), WithPrior(), tc).faithful(real, real, real, real + edge).item()
    assert costs[True] > 5 * costs[False]


# ---------------------------------------------------------------------------------- tissue-balanced discriminators
BOUNDS = torch.tensor([0.0])  # one boundary: class 1 below 0 ("dark tissue"), class 2 above ("bright tissue")


def two_tissues(bright_fraction: float, n: int = 4, size: int = 10) -> torch.Tensor:
    """(n, 1, size, size) patches: the first ``bright_fraction`` of the columns bright (0.5), the rest dark (-0.5)."""
    x = torch.full((n, 1, size, size), -0.5)
    x[..., : round(bright_fraction * size)] = 0.5
    return x


class TissueDetector(nn.Module):
    """A discriminator that only tells tissues apart: logit 1 on bright tissue, 0 on dark (it ignores realism)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0).float()


def test_balanced_weights_give_every_tissue_the_same_total_weight():
    from mri_cyclegan.losses import tissue_balanced_weights, tissue_labels

    x = two_tissues(0.8)
    x[0, 0, 0, 0] = -1.0  # one pixel of no signal: a class of its own
    labels = tissue_labels(x, BOUNDS)
    assert set(labels.unique().tolist()) == {0, 1, 2}
    w = tissue_balanced_weights(labels, 3, (10, 10))
    assert w.mean().item() == pytest.approx(1.0)
    totals = [w[:, 0][labels == k].sum().item() for k in range(3)]
    assert totals == pytest.approx([totals[0]] * 3)  # air, dark and bright tissue count the same
    assert w[:, 0][labels == 1].mean() > w[:, 0][labels == 2].mean()  # the rare dark tissue weighs more per pixel


def test_balanced_discriminator_gains_nothing_from_tissue_proportions():
    """Real patches mostly bright tissue, fake ones mostly dark: a discriminator that only detects bright tissue
    beats a constant guess (0.5) unweighted, which is what pulls translations towards the target set's proportions;
    with the tissue-balanced weights it scores worse than the constant guess."""
    tc = TrainConfig()
    real, fake = two_tissues(0.8), two_tissues(0.2)
    constant = Affine(0.0, 0.5)
    for bounds, detector_wins in ((None, True), ((BOUNDS, BOUNDS), False)):
        def loss(d):
            return DiscriminatorObjective(d, d, tc, bounds)(real, real, fake, fake).item()

        assert (loss(TissueDetector()) < loss(constant)) is detector_wins
    # by hand, balanced: real 0.5 * 0 (bright) + 0.5 * 1 (dark); fake 0.5 * 1 + 0.5 * 0; both contrasts
    assert DiscriminatorObjective(TissueDetector(), TissueDetector(), tc, (BOUNDS, BOUNDS))(real, real, fake, fake).item() == pytest.approx(1.0)


def test_balanced_generator_term_weighs_the_translations_tissues_equally():
    """The generators' adversarial term with balance: a translation 80 % bright, judged 'real' only where bright, costs
    half the dark tissue's error (0.5), not its 20 % share (0.2)."""
    tc = TrainConfig(lambda_cycle=0.0, lambda_anchor=0.0, lambda_structure=0.0)
    ident = Affine(1.0)
    x = two_tissues(0.8)
    for bounds, expected in ((None, 2 * 0.2), ((BOUNDS, BOUNDS), 2 * 0.5)):
        gan = GeneratorObjective(ident, ident, tc, bounds)(x, x, TissueDetector(), TissueDetector())[1]
        assert gan.item() == pytest.approx(expected)


def test_trainer_hands_each_contrasts_class_bounds_to_both_objectives(tiny_config, image_folders, tmp_path):
    from mri_cyclegan.data.dataset import load_domain
    from mri_cyclegan.training.trainer import Trainer

    cfg = tiny_config.replace(**{"train.balance_d": True})
    t1, t2 = load_domain(image_folders[0], cfg.data), load_domain(image_folders[1], cfg.data)
    t = Trainer(cfg, t1, t2, tmp_path / "r")
    for obj in (t.g_objective, t.d_objective):
        assert obj.bounds_t1 is not None and obj.bounds_t2 is not None and obj.bounds_t1.numel() == 2
        assert not torch.equal(obj.bounds_t1, obj.bounds_t2)  # each set's own classes
    losses = t.train_step(*t.batches.next())
    assert all(v == v for v in losses.values())  # finite numbers
    off = Trainer(tiny_config, t1, t2, tmp_path / "off")
    assert off.g_objective.bounds_t1 is None and off.d_objective.bounds_t2 is None  # the default: unweighted


def test_patch_nce_heads_are_built_trained_and_saved_with_the_model(tiny_config, image_folders, tmp_path):
    """lambda_nce > 0: the model holds one projection head per direction, the generators' optimizer trains them, the
    faithfulness loss includes PatchNCE (anchor and structure off here), and the checkpoint (what translate loads)
    rebuilds them; lambda_nce = 0 builds none."""
    from mri_cyclegan.checkpoints import load_model
    from mri_cyclegan.data.dataset import load_domain
    from mri_cyclegan.training.trainer import Trainer

    cfg = tiny_config.replace(**{"train.lambda_nce": 1.0, "train.lambda_anchor": 0.0, "train.lambda_structure": 0.0})
    t1, t2 = load_domain(image_folders[0], cfg.data), load_domain(image_folders[1], cfg.data)
    t = Trainer(cfg, t1, t2, tmp_path / "r")
    heads = t.model.nce_heads()
    assert len(heads) == 2
    trained = {id(p) for group in t.opt_g.param_groups for p in group["params"]}
    assert all(id(p) in trained for h in heads for p in h.parameters())
    before = [p.detach().clone() for p in heads[0].parameters()]
    losses = t.train_step(*t.batches.next())
    assert losses["loss_faithful"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, heads[0].parameters()))
    loaded, _ = load_model(t.save())
    assert len(loaded.nce_heads()) == 2
    assert Trainer(tiny_config, t1, t2, tmp_path / "off").model.nce_heads() == []


def test_patch_nce_needs_the_resnet_generator():
    from mri_cyclegan.config import Config
    from mri_cyclegan.errors import InputError

    with pytest.raises(InputError, match="ResNet"):
        Config().replace(**{"train.lambda_nce": 1.0, "model.generator": "unet"})
