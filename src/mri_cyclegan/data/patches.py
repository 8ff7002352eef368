"""Patch sampling for training and whole-slice / tiled application for inference.

Training sees random patches around foreground at native resolution; inference runs the fully
convolutional generator on whole slices (padded to the generator's multiple, padding cropped off),
or, for slices too large for memory, on overlapping tiles blended with smooth weights.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .preprocess import FOREGROUND

BACKGROUND = -1.0


def _pad(x: torch.Tensor, pad: tuple[int, int, int, int], replicate: bool, value: float = BACKGROUND) -> torch.Tensor:
    """F.pad's (left, right, top, bottom) on (..., h, w): with background ``value``, or repeating the border pixels.

    Inference pads with the border (``replicate``): tissue cut by the edge of the image must not gain a background
    neighbour there, or it becomes an outline that the prior unmixes (``models.networks.unmix_outline``)."""
    if not replicate:
        return F.pad(x, pad, value=value)
    lead = x.shape[:-2]
    out = F.pad(x.reshape(-1, 1, *x.shape[-2:]), pad, mode="replicate")  # replicate mode wants (N, C, H, W)
    return out.reshape(*lead, *out.shape[-2:])


def _pad_to(x: torch.Tensor, size: tuple[int, int], replicate: bool = False) -> tuple[torch.Tensor, tuple[int, int]]:
    """Centre-pad (..., h, w) to at least ``size`` (background, or the border with ``replicate``); returns the
    tensor and the (top, left) offset."""
    h, w = x.shape[-2:]
    ph, pw = max(0, size[0] - h), max(0, size[1] - w)
    if not ph and not pw:
        return x, (0, 0)
    top, left = ph // 2, pw // 2
    return _pad(x, (left, pw - left, top, ph - top), replicate), (top, left)


def foreground_patches(windows: list[torch.Tensor], size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """One ``size`` patch per (K, h, w) window, centred on a random foreground pixel of the centre channel
    (anywhere if there is none) and kept inside the slice where it fits; slices smaller than the patch are
    padded with background. Returns (N, K, size[0], size[1])."""
    out = []
    for x in windows:
        x, _ = _pad_to(x, size)
        h, w = x.shape[-2:]
        centre = x[x.shape[0] // 2]
        fg = torch.nonzero(centre.flatten() > FOREGROUND).flatten()
        k = int(torch.randint(0, fg.numel() if fg.numel() else h * w, (1,), generator=generator))
        flat = int(fg[k]) if fg.numel() else k
        cy, cx = divmod(flat, w)
        y0 = min(max(cy - size[0] // 2, 0), h - size[0])
        x0 = min(max(cx - size[1] // 2, 0), w - size[1])
        out.append(x[:, y0 : y0 + size[0], x0 : x0 + size[1]])
    return torch.stack(out)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad (N, C, h, w) on the bottom/right to multiples of ``multiple`` by repeating the border (see :func:`_pad`);
    returns the crop box."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = _pad(x, (0, pw, 0, ph), replicate=True)
    return x, (0, h, 0, w)


def _blend_window(size: tuple[int, int], overlap: int, device: torch.device) -> torch.Tensor:
    """Weights rising smoothly (raised cosine) over ``overlap`` pixels at each tile border; never zero."""

    def ramp(n: int) -> torch.Tensor:
        w = torch.ones(n, device=device)
        m = min(overlap, n // 2)
        if m > 0:
            t = (torch.arange(m, device=device, dtype=torch.float32) + 0.5) / m
            r = 0.5 - 0.5 * torch.cos(torch.pi * t)
            w[:m] = r
            w[n - m :] = r.flip(0)
        return w

    return ramp(size[0])[:, None] * ramp(size[1])[None, :]


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """Apply ``fn`` ((N, C, t, t) -> (N, C', t, t)) on overlapping tiles of (N, C, H, W) and blend the results
    with raised-cosine weights. ``tile`` must suit ``fn`` (e.g. a multiple of the generator's multiple)."""
    if overlap < 0 or overlap >= tile:
        raise ValueError(f"overlap must be in [0, tile); got {overlap} for tile {tile}")
    n, _, h, w = x.shape
    xp, (top, left) = _pad_to(x, (tile, tile), replicate=True)
    hp, wp = xp.shape[-2:]
    step = tile - overlap

    def starts(length: int) -> list[int]:
        s = list(range(0, max(length - tile, 0) + 1, step))
        if s[-1] + tile < length:
            s.append(length - tile)
        return s

    weight = _blend_window((tile, tile), overlap, xp.device)
    acc = None
    norm = torch.zeros((hp, wp), device=xp.device)
    for y in starts(hp):
        for x0 in starts(wp):
            out = fn(xp[:, :, y : y + tile, x0 : x0 + tile]).float()
            if acc is None:
                acc = torch.zeros((n, out.shape[1], hp, wp), device=xp.device)
            acc[:, :, y : y + tile, x0 : x0 + tile] += out * weight
            norm[y : y + tile, x0 : x0 + tile] += weight
    assert acc is not None
    return (acc / norm)[:, :, top : top + h, left : left + w]


def apply_whole(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: int,
                max_pixels: int = 1024 * 1024, tile: int = 512, overlap: int = 64) -> torch.Tensor:
    """Run ``fn`` on whole (N, C, h, w) slices at their own size: padded (border repeated) to ``multiple`` and
    cropped back; slices with more than ``max_pixels`` pixels go through :func:`tiled_apply` instead."""
    h, w = x.shape[-2:]
    if h * w > max_pixels:
        tile = max(multiple, tile - tile % multiple)
        return tiled_apply(fn, x, tile, min(overlap, tile // 2))
    xp, (y0, y1, x0, x1) = pad_to_multiple(x, multiple)
    return fn(xp)[:, :, y0:y1, x0:x1]
