"""The networks, top-down. Shapes for 1 channel, batch N, input H x W.

Instance norm without affine parameters, weights N(0, 0.02), as the reference CycleGAN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..baselines import N_KNOTS
from ..data.preprocess import FOREGROUND
from .edge_conv import EdgeConv2d


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _upsample(c_in: int, c_out: int, kind: str) -> list[nn.Module]:
    """x2 upsampling: 'resize' = nearest-neighbour resize then a 3x3 convolution (no checkerboard, Odena et al. 2016);
    'transpose' = the reference's stride-2 transposed convolution (uneven kernel overlap: checkerboard-prone)."""
    if kind == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3)]
    if kind == "transpose":
        return [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)]
    raise ValueError(f"upsample must be resize or transpose; got {kind!r}")


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-1. Sides must be multiples of 4."""

    def __init__(self, ngf: int = 64, n_blocks: int = 9, in_ch: int = 1, out_ch: int = 1, upsample: str = "transpose") -> None:
        super().__init__()
        edge = EdgeConv2d if in_ch == 1 else nn.Conv2d  # 1-channel 7x7 layers as matmuls on CPU (edge_conv.py)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), edge(in_ch, ngf, 7), _norm(ngf), nn.ReLU(True)]
        # (N, ngf, H, W)
        for mult in (1, 2):  # -> (N, 2ngf, H/2, W/2) -> (N, 4ngf, H/4, W/4)
            c = ngf * mult
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), _norm(2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(4 * ngf) for _ in range(n_blocks)]  # (N, 4ngf, H/4, W/4)
        for mult in (4, 2):  # -> (N, 2ngf, H/2, W/2) -> (N, ngf, H, W)
            c = ngf * mult
            layers += [*_upsample(c, c // 2, upsample), _norm(c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), (EdgeConv2d if out_ch == 1 else nn.Conv2d)(ngf, out_ch, 7)]  # (N, out_ch, H, W), no activation
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def nce_layers(self) -> list[int]:
        """Indices into ``net`` whose outputs PatchNCE compares: after the first convolution (ngf, H), after each
        downsampling (2ngf, H/2; 4ngf, H/4) and after the middle residual block (4ngf, H/4)."""
        n_blocks = sum(isinstance(m, ResnetBlock) for m in self.net)
        return [3, 6, 9, 9 + max(1, n_blocks // 2)] if n_blocks else [3, 6, 9]

    def nce_channels(self) -> list[int]:
        ngf = self.net[1].out_channels
        return [ngf, 2 * ngf, 4 * ngf, 4 * ngf][: len(self.nce_layers())]

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The outputs of :meth:`nce_layers` for ``x`` (the encoder only: the layers after the last one are not run)."""
        layers, out = self.nce_layers(), []
        for i, module in enumerate(self.net[: layers[-1] + 1]):
            x = module(x)
            if i in layers:
                out.append(x)
        return out


class UnetGenerator(nn.Module):
    """U-Net with ``downs`` stride-2 levels and skip connections; sides must be multiples of 2**downs.

    Widths ngf, 2ngf, 4ngf, 8ngf, 8ngf, ... (capped at 8ngf); at 256 with 8 downs the bottleneck is 1x1.
    """

    def __init__(self, ngf: int = 64, downs: int = 8, in_ch: int = 1, out_ch: int = 1) -> None:
        super().__init__()
        widths = [ngf * min(2**i, 8) for i in range(downs)]  # output channels of each down level
        self.down = nn.ModuleList()
        prev = in_ch
        for i, w in enumerate(widths):  # level i: (N, prev, H/2^i) -> (N, w, H/2^(i+1))
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(prev, w, 4, stride=2, padding=1))
            if 0 < i < downs - 1:  # no norm on the outermost and innermost (1x1) levels
                layers.append(_norm(w))
            self.down.append(nn.Sequential(*layers))
            prev = w
        self.up = nn.ModuleList()
        for i in reversed(range(downs)):  # level i: (N, in, H/2^(i+1)) -> (N, out, H/2^i)
            c_in = widths[i] if i == downs - 1 else 2 * widths[i]
            c_out = out_ch if i == 0 else widths[i - 1]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)]
            if i > 0:
                layers.append(_norm(c_out))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        skips.pop()  # the bottleneck feeds the first up level directly
        for layer in self.up:
            x = layer(x)
            if skips:
                x = torch.cat([skips.pop(), x], 1)  # (N, 2w, ...) skip connection
        return x


class HistogramPrior(nn.Module):
    """Piecewise-linear intensity map given by its values at evenly spaced knots on [-1, 1].

    With ``unmix_outline`` (the generator's prior; see :func:`unmix_outline`), the outermost layer of signal next
    to the background is mapped as a mixture of the tissue behind it and the background, not as the tissue whose
    intensity it happens to have."""

    def __init__(self, n_knots: int = N_KNOTS, unmix_outline: bool = False) -> None:
        super().__init__()
        self.register_buffer("lut", torch.linspace(-1.0, 1.0, n_knots))
        self.unmix_outline = unmix_outline

    def table(self, x: torch.Tensor) -> torch.Tensor:
        """The pointwise map alone."""
        k = self.lut.numel()
        pos = (x.clamp(-1, 1) + 1) * (0.5 * (k - 1))  # (N, 1, H, W) in [0, k-1]
        i0 = pos.detach().floor().clamp(0, k - 2)
        w = pos - i0
        i0 = i0.long()
        lut = self.lut.to(x.dtype)
        return lut[i0] * (1 - w) + lut[i0 + 1] * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.table(x)
        return spatial_rules(x, y) if self.unmix_outline else y


def keep_background(x: torch.Tensor, y: torch.Tensor, threshold: float = FOREGROUND) -> torch.Tensor:
    """(N, K, H, W) model-space input ``x`` and its translation ``y`` -> ``y`` with no signal (-1) wherever ``x`` is
    background: at or below ``threshold`` with nothing above it within 2 pixels (each channel a 2D image).

    The table ramps from no signal to the darkest tissue over the few hundredths of the window between the training
    set's background and its darkest tissue. Images whose background is noisier than the training set's (16-bit scans
    translated by a model trained on 8-bit PNGs, whose background is exactly 0) put that noise on the ramp, and the table
    paints the air around the head with bright speckles (an inverted table sends the darkest tissue to the brightest).
    Dark pixels within 2 pixels of signal keep the table's value (partial volume at the outline)."""
    n, k, h, w = x.shape
    fx = x.reshape(n * k, 1, h, w)
    near_signal = F.max_pool2d(fx, 5, stride=1, padding=2) > threshold
    air = (fx <= threshold) & ~near_signal
    return torch.where(air.reshape(y.shape), torch.full_like(y, -1.0), y)


def unmix_outline(x: torch.Tensor, y: torch.Tensor, threshold: float = FOREGROUND) -> torch.Tensor:
    """(N, K, H, W) model-space input ``x`` and its translation ``y`` -> ``y`` with the outline of ``x`` (signal
    pixels with a background neighbour, at or below ``threshold``; each channel a 2D image) unmixed.

    An outline pixel is partly background (partial volume). A pointwise table reads its intermediate intensity as
    some other tissue: in T2, bright CSF half-filling a voxel has grey/white matter's intensity, so T2 -> T1 paints
    the CSF around the brain as bright tissue. Instead it becomes a linear mixture of no signal (-1, the
    model-space background) and the translation of the tissue behind it, the mean of ``y`` over the signal pixels
    within 2 pixels that are not on the outline (``inner``): the fraction ``f = (x + 1) / (x_inner + 1)`` of
    ``y_inner``, the rest no signal. Only where the pixel is darker than the tissue behind it (a mixture with
    background is); elsewhere ``y`` is unchanged, and an identity translation stays the identity. Right for any
    tissue at the outline (a CSF rim, a skull-stripped grey-matter edge, scalp), because the tissue behind names
    it; wrong only for a layer of darker tissue one pixel thin with no partial volume at all (hard-edged synthetic
    images), which it reads as a mixture. Used on the prior's table and on the generator's output, so training can
    refine the outline only through the tissue behind it."""
    n, k, h, w = x.shape
    fx, fy = x.reshape(n * k, 1, h, w), y.reshape(n * k, 1, h, w)
    signal = (fx > threshold).to(fx.dtype)
    inner = -F.max_pool2d(-signal, 3, stride=1, padding=1)  # signal whose 8 neighbours are signal (image edge: not background)
    outline = signal - inner  # (N*K, 1, H, W): 1 on the outermost signal layer
    count = F.avg_pool2d(inner, 5, stride=1, padding=2).clamp_min(1e-6)
    x_in = F.avg_pool2d(fx * inner, 5, stride=1, padding=2) / count  # the tissue behind, in the input ...
    y_in = F.avg_pool2d(fy * inner, 5, stride=1, padding=2) / count  # ... and translated
    f = ((fx + 1) / (x_in + 1).clamp_min(0.05)).clamp(0, 1)
    use = (outline > 0) & (count > 1e-3) & (fx < x_in)
    return torch.where(use, -1 + f * (y_in + 1), fy).reshape(y.shape)


def spatial_rules(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """What the prior (``outline: unmix``) adds to the pointwise table, applied to the table's translation and to the
    generator's alike: the outline unmixed (:func:`unmix_outline`), then the air kept air (:func:`keep_background`)."""
    return keep_background(x, unmix_outline(x, y))


class Generator(nn.Module):
    """backbone -> output. Without prior: tanh(backbone(x)); with prior: clamp(table(x) + backbone(x)), the
    outline then unmixed (:func:`unmix_outline`) unless the config says ``outline: table``.

    With a prior the backbone's last layer starts at zero, so the untrained generator *is* the prior.
    In eval mode (what translate, evaluate, samples and the safety net use) the output is first held within
    ``residual_bound`` of the prior's translation, voxel by voxel (:meth:`bounded`; 0 = unbounded), then goes through
    ``calibration``: a monotone intensity map fitted after each epoch so that outputs on the training images have the
    target contrast's training histogram (unpaired; identity until fitted). Training never sees either.
    """

    def __init__(self, backbone: nn.Module, use_prior: bool, unmix_outline: bool = True, residual_bound: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.prior = HistogramPrior(unmix_outline=unmix_outline) if use_prior else None
        self.calibration = HistogramPrior()
        self.residual_bound = residual_bound

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        if self.prior is None:
            return torch.tanh(self.backbone(x))
        y = self.prior.table(x) + self.backbone(x)
        if self.prior.unmix_outline:  # the same spatial rules as the prior's
            y = spatial_rules(x, y)
        return torch.clamp(y, -1.0, 1.0)

    def bounded(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`raw`, each voxel held within ``residual_bound`` of the prior's translation (the lookup table with its
        outline rule). Unpaired training's largest changes are where it goes wrong: distribution matching turns a band
        of signal into background (the CSF around the brain made black) or moves a tissue towards the other set's
        proportions (benchmarks/residual_bound.py). The prior's translation is computed again here (pointwise, cheap
        next to the backbone)."""
        y = self.raw(x)
        if self.prior is None or self.residual_bound <= 0:
            return y
        p = self.prior(x)
        return torch.minimum(torch.maximum(y, p - self.residual_bound), p + self.residual_bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.raw(x) if self.training else self.calibration(self.bounded(x))


class PatchDiscriminator(nn.Module):
    """PatchGAN: C64-C128-C256-C512(stride 1)-1; 70x70 receptive field with n_layers=3. Outputs logits."""

    def __init__(self, ndf: int = 64, n_layers: int = 3, in_ch: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        c = ndf  # (N, ndf, H/2, W/2)
        for n in range(1, n_layers + 1):  # stride 2 except the last: (N, ndf*2^n, H/2^(n+1)) ...
            c_next = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(c, c_next, 4, stride=stride, padding=1), _norm(c_next), nn.LeakyReLU(0.2, True)]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))  # (N, 1, ~H/2^n_layers - 2, ...) logits
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def init_weights(module: nn.Module, generator: torch.Generator, gain: float = 0.02) -> None:
    """N(0, gain) for conv (and linear) weights, zero biases (reference 'normal' init), from ``generator``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def last_conv(module: nn.Module) -> nn.Module:
    convs = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    return convs[-1]
