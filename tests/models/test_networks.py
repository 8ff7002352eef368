import numpy as np
import pytest
import torch

from mri_cyclegan.config import ModelConfig
from mri_cyclegan.models import CycleGAN, PatchDiscriminator, ResnetGenerator, UnetGenerator
from mri_cyclegan.models.networks import HistogramPrior


@pytest.mark.parametrize("size", [(32, 32), (64, 48), (96, 112)])
def test_resnet_shapes(size):
    g = ResnetGenerator(ngf=4, n_blocks=2)
    assert g(torch.randn(2, 1, *size)).shape == (2, 1, *size)


@pytest.mark.parametrize("size, downs", [(32, 5), (64, 4), (256, 8)])
def test_unet_shapes(size, downs):
    g = UnetGenerator(ngf=4, downs=downs)
    assert g(torch.randn(1, 1, size, size)).shape == (1, 1, size, size)


def test_patchgan_receptive_field_is_70():
    d = PatchDiscriminator(ndf=4, n_layers=3)
    for i, m in enumerate(d.net):  # instance norm couples all pixels; the conv geometry is what is tested
        if isinstance(m, torch.nn.InstanceNorm2d):
            d.net[i] = torch.nn.Identity()
    x = torch.zeros(1, 1, 128, 128, requires_grad=True)
    out = d(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    assert rows.max() - rows.min() + 1 == 70


def test_prior_generator_starts_at_lut():
    m = CycleGAN(ModelConfig(ngf=4, n_blocks=1), 32)
    lut = np.linspace(1, -1, 256).astype(np.float32)
    lut[0] = -1
    m.set_priors(lut, lut)
    x = torch.rand(2, 1, 32, 32) * 1.8 - 0.8
    torch.testing.assert_close(m.g_t1_to_t2(x), -x, atol=1e-4, rtol=0)


def test_init_is_seeded():
    a, b = CycleGAN(ModelConfig(ngf=4, n_blocks=1, prior="none"), 32, seed=1), CycleGAN(ModelConfig(ngf=4, n_blocks=1, prior="none"), 32, seed=1)
    c = CycleGAN(ModelConfig(ngf=4, n_blocks=1, prior="none"), 32, seed=2)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert 0.015 < pa.std().item() < 0.025


@pytest.mark.parametrize("in_ch, out_ch", [(5, 1), (1, 32)])
def test_edge_conv_equals_convolution_forward_and_backward(in_ch, out_ch):
    """The matmul path of the generator's 1-channel 7x7 layers gives conv2d's outputs and all three gradients."""
    from mri_cyclegan.models.edge_conv import EdgeConv2d

    torch.manual_seed(0)
    fast = EdgeConv2d(in_ch, out_ch, 7)
    ref = torch.nn.Conv2d(in_ch, out_ch, 7)
    ref.load_state_dict(fast.state_dict())  # same parameters, same state-dict keys
    x = torch.randn(2, in_ch, 19, 23)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = fast(xa), ref(xb)
    torch.testing.assert_close(ya, yb, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(yb)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(fast.bias.grad, ref.bias.grad, atol=1e-4, rtol=1e-5)


def test_generator_uses_edge_conv_at_both_ends():
    from mri_cyclegan.models.edge_conv import EdgeConv2d

    g = ResnetGenerator(ngf=4, n_blocks=1)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert isinstance(convs[0], EdgeConv2d) and isinstance(convs[-1], EdgeConv2d)


# ------------------------------------------------------------------------------------ the prior at the outline
def _t2_to_t1_table() -> HistogramPrior:
    """A T2 -> T1-like lookup table: no signal stays -1; bright T2 CSF (0.9) -> dark T1 (-0.6); mid T2 (grey/white
    matter, -0.05) -> bright T1 (0.5)."""
    prior = HistogramPrior(unmix_outline=True)
    knots = torch.linspace(-1, 1, prior.lut.numel())
    prior.lut.copy_(torch.from_numpy(np.interp(knots.numpy(), [-1, -0.9, -0.05, 0.9, 1], [-1, -0.9, 0.5, -0.6, -0.65])))
    return prior


def _t2_head(h: int = 24, w: int = 24) -> torch.Tensor:
    """(1, 1, H, W) model space: background -1 on the left, then one pixel half CSF / half background, a 3-pixel
    CSF rim (0.9) and grey matter (-0.05) behind it."""
    x = torch.full((1, 1, h, w), -1.0)
    x[..., 6] = -1 + 0.5 * (0.9 + 1)  # the partial-volume outline pixel: -0.05, grey matter's T2 intensity
    x[..., 7:10] = 0.9
    x[..., 10:] = -0.05
    return x


def test_outline_pixel_is_unmixed_as_tissue_behind_plus_background():
    prior = _t2_to_t1_table()
    x = _t2_head()
    y = prior(x)
    # half CSF: half of CSF's T1 value above no signal (-1 + 0.5 * (-0.6 + 1)), not grey matter's bright 0.5
    torch.testing.assert_close(y[..., 6], torch.full_like(y[..., 6], -0.8), atol=1e-3, rtol=0)
    pointwise = prior.table(x)
    assert torch.allclose(pointwise[..., 6], torch.tensor(0.5), atol=0.01)  # what the pointwise table does
    away = torch.ones(24, dtype=torch.bool)
    away[6] = False
    assert torch.equal(y[..., away], pointwise[..., away])  # nothing else changes
    prior.unmix_outline = False
    assert torch.equal(prior(x), pointwise)


def test_outline_unmixing_leaves_bright_rims_identity_and_interior_alone():
    prior = _t2_to_t1_table()
    x = _t2_head()
    x[..., 6] = 0.95  # an outline pixel brighter than the tissue behind it is no mixture with background
    torch.testing.assert_close(prior(x), prior.table(x))
    identity = HistogramPrior(unmix_outline=True)  # an identity table stays the identity, outline included
    g = torch.Generator().manual_seed(0)
    z = torch.rand(2, 3, 20, 20, generator=g) * 2 - 1
    z[:, :, :, :5] = -1  # background with an outline next to it, in every channel
    torch.testing.assert_close(identity(z), z, atol=1e-5, rtol=0)


def test_generator_prior_unmixes_the_outline_unless_configured_pointwise():
    x = _t2_head(32, 32)
    outs = {}
    for outline in ("unmix", "table"):
        m = CycleGAN(ModelConfig(ngf=4, n_blocks=1, outline=outline), 32)
        lut = _t2_to_t1_table().lut.numpy()
        m.set_priors(lut, lut)
        outs[outline] = m.eval().g_t2_to_t1.raw(x)
    assert outs["unmix"][..., 6].max() < -0.7 < 0.4 < outs["table"][..., 6].min()
    assert m.g_t2_to_t1.calibration.unmix_outline is False  # the output calibration is pointwise


class _Constant(torch.nn.Module):
    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value


def test_trained_outline_follows_the_tissue_behind_it():
    """The generator's outline is unmixed from its own translation of the tissue behind: a residual that only
    darkens the outline layer changes nothing there; one that brightens the tissue behind carries into it."""
    m = CycleGAN(ModelConfig(ngf=4, n_blocks=1), 32)
    lut = _t2_to_t1_table().lut.numpy()
    m.set_priors(lut, lut)
    g = m.g_t2_to_t1
    x = _t2_head(32, 32)
    base = g.raw(x)
    outline_only = torch.zeros_like(x)
    outline_only[..., 6] = -0.5
    behind = torch.zeros_like(x)
    behind[..., 7:10] = 0.2
    for residual, want in ((outline_only, -0.8), (behind, -1 + 0.5 * (-0.6 + 0.2 + 1))):
        g.backbone = _Constant(residual)
        y = g.raw(x)
        torch.testing.assert_close(y[..., 6], torch.full_like(y[..., 6], want), atol=1e-3, rtol=0)
        assert torch.equal(y[..., 7:], torch.clamp(base[..., 7:] + residual[..., 7:], -1, 1))


def test_prior_table_is_the_numpy_lookup_table():
    """The model's table (torch, differentiable) and ``baselines.apply_lut`` (numpy: tests, benchmarks) are the same
    piecewise-linear map, inputs outside [-1, 1] held at the end knots included."""
    from mri_cyclegan.baselines import apply_lut

    rng = np.random.default_rng(0)
    lut = np.sort(rng.uniform(-1, 1, 33)).astype(np.float32)[::-1].copy()  # a decreasing table (T1 <-> T2)
    x = np.concatenate([rng.uniform(-1.2, 1.2, 2000), [-1.0, 1.0, 0.0]]).astype(np.float32)
    prior = HistogramPrior(lut.size)
    prior.lut.copy_(torch.from_numpy(lut))
    got = prior.table(torch.from_numpy(x)[None, None, None]).numpy().ravel()
    np.testing.assert_allclose(got, apply_lut(x, lut), atol=1e-6)


def test_translations_stay_within_the_residual_bound_of_the_lookup_table():
    """In eval mode (translate, evaluate, samples, the safety net) no voxel is further than ``residual_bound`` from the
    prior's translation: a residual that blackens a band of tissue is cut to the bound, a small one passes unchanged;
    training sees the unbounded output, and a bound of 0 means unbounded."""
    x = _t2_head(32, 32)
    residual = torch.zeros_like(x)
    residual[..., 10:14] = -1.5  # a band of tissue turned black (the CSF around the brain, say)
    residual[..., 20:24] = 0.05  # a small correction
    lut = _t2_to_t1_table().lut.numpy()
    outs = {}
    for bound in (0.2, 0.0):
        m = CycleGAN(ModelConfig(ngf=4, n_blocks=1, residual_bound=bound), 32)
        m.set_priors(lut, lut)
        g = m.g_t2_to_t1
        g.backbone = _Constant(residual)
        prior = g.prior(x)
        outs[bound] = g.eval()(x)
        assert torch.equal(g.train()(x), g.raw(x))  # training is unbounded
    change = outs[0.2] - prior
    assert change.abs().max() <= 0.2 + 1e-6
    torch.testing.assert_close(change[..., 10:14], torch.full_like(change[..., 10:14], -0.2), atol=1e-5, rtol=0)
    torch.testing.assert_close(change[..., 20:24], torch.full_like(change[..., 20:24], 0.05), atol=1e-5, rtol=0)
    assert (outs[0.0] - prior)[..., 10:14].min() < -1  # unbounded



def test_noise_in_the_air_stays_no_signal_whatever_the_table_or_the_residual():
    """A table learnt from 8-bit images (background exactly -1) ramps to the brightest target within a few hundredths
    of the window; a 16-bit scan's background noise lands on that ramp. The air (at or below the threshold, nothing
    above it within 2 pixels) is translated to no signal, by the prior and by the trained generator alike; dark pixels
    next to the head keep the table's value (partial volume)."""
    prior = HistogramPrior(unmix_outline=True)
    knots = torch.linspace(-1, 1, prior.lut.numel())
    prior.lut.copy_(torch.from_numpy(np.interp(knots.numpy(), [-1, -0.97, 1], [-1, 1, -0.6])))  # inverted, steep ramp
    x = _t2_head(32, 32)
    noise = -1 + 0.04 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0))  # [-1, -0.96]: below the threshold
    x[..., :6] = noise[..., :6]
    assert prior.table(x)[..., :3].max() > 0  # the table alone paints speckles
    y = prior(x)
    assert torch.equal(y[..., :4], torch.full_like(y[..., :4], -1.0))  # the air, 3+ pixels from the head
    torch.testing.assert_close(y[..., 4:6], prior.table(x)[..., 4:6])  # within 2 pixels of the head: the table's value
    m = CycleGAN(ModelConfig(ngf=4, n_blocks=1), 32)
    m.g_t2_to_t1.prior.lut.copy_(prior.lut)
    m.g_t2_to_t1.backbone = _Constant(torch.full_like(x, 0.5))
    out = m.g_t2_to_t1.raw(x)
    assert torch.equal(out[..., :4], torch.full_like(out[..., :4], -1.0)) and out[..., 12:].min() > prior(x)[..., 12:].min()
    prior.unmix_outline = False  # the pointwise table of earlier runs keeps its speckles
    assert prior(x)[..., :3].max() > 0
