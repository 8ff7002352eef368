import pytest
import torch

from mri_cyclegan.data.patches import apply_whole, foreground_patches, pad_to_multiple, tiled_apply


def test_foreground_patches_find_the_tissue():
    x = torch.full((1, 200, 300), -1.0)
    x[0, 150:160, 250:262] = 0.5  # a small blob far from the centre
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        p = foreground_patches([x], (64, 64), g)
        assert p.shape == (1, 1, 64, 64) and (p > 0).sum() == 120  # the whole blob is always in the patch
    small = foreground_patches([torch.zeros(3, 20, 30)], (32, 32), g)  # smaller than the patch: padded with background
    assert small.shape == (1, 3, 32, 32) and (small == -1).sum() == 3 * (32 * 32 - 20 * 30)


def test_pad_to_multiple_and_apply_whole_keep_the_size():
    x = torch.rand(2, 3, 37, 45)
    xp, box = pad_to_multiple(x, 8)
    assert xp.shape == (2, 3, 40, 48) and box == (0, 37, 0, 45)
    assert (xp[..., 37:, :45] == x[..., 36:, :]).all() and (xp[..., :37, 45:] == x[..., :, 44:]).all()  # the border repeated
    seen = []

    def fn(t):
        seen.append(tuple(t.shape))
        return t * 2 + 1

    out = apply_whole(fn, x, 8)
    assert seen == [(2, 3, 40, 48)]
    torch.testing.assert_close(out, x * 2 + 1)


@pytest.mark.parametrize("shape", [(1, 1, 130, 201), (2, 3, 64, 64), (1, 1, 40, 50)])
def test_tiled_apply_blends_to_the_whole_result(shape):
    x = torch.rand(*shape)
    out = tiled_apply(lambda t: t * 3 - 1, x, tile=64, overlap=16)  # any pointwise map is reproduced exactly
    torch.testing.assert_close(out, x * 3 - 1)
    conv = torch.nn.Conv2d(shape[1], 2, 3, padding=1, bias=False)
    with torch.no_grad():
        full, tiled = conv(x), tiled_apply(conv, x, tile=64, overlap=16)
    assert tiled.shape == full.shape
    inner = (..., slice(2, -2), slice(2, -2))
    assert (tiled - full)[inner].abs().max() < 0.2 * full.abs().max()  # seams blended, not stitched


def test_apply_whole_tiles_large_slices():
    x = torch.rand(1, 1, 300, 260)
    calls = []
    out = apply_whole(lambda t: calls.append(t.shape) or t + 0.5, x, 4, max_pixels=100 * 100, tile=128, overlap=32)
    assert len(calls) > 1 and all(c[-1] == 128 for c in calls)
    torch.testing.assert_close(out, x + 0.5)


def test_tile_seams_follow_a_raised_cosine():
    """Two tiles whose outputs disagree (0 and 1): across the 16-pixel overlap the result rises as 0.5 - 0.5 cos,
    not as a flat 0.5 (a mean) nor as a step (stitching)."""
    import math

    calls = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return torch.zeros_like(t) + (len(calls) - 1)

    out = tiled_apply(fn, torch.zeros(1, 1, 64, 112), tile=64, overlap=16)
    assert len(calls) == 2
    row = out[0, 0, 10]
    expected = torch.tensor([0.5 - 0.5 * math.cos(math.pi * (i + 0.5) / 16) for i in range(16)])
    torch.testing.assert_close(row[48:64], expected, atol=1e-5, rtol=0)
    assert (row[:48] == 0).all() and (row[64:] == 1).all()
