"""DiffAugment: each op's formula and range, the policy order, gradients."""

import pytest
import torch

from styleforge.augment import DiffAugment
from styleforge.augment.diffaug import rand_brightness, rand_contrast, rand_cutout, rand_saturation, rand_translation
from styleforge.errors import UserError

N = 512


def test_brightness_adds_a_per_sample_constant_in_half_range():
    x = torch.rand(N, 3, 8, 8) * 2 - 1
    shift = rand_brightness(x) - x
    per_sample = shift[:, :1, :1, :1]
    assert torch.allclose(shift, per_sample.expand_as(shift), atol=1e-6)
    assert per_sample.min() >= -0.5 and per_sample.max() < 0.5 and per_sample.std() > 0.25  # U(-0.5, 0.5)


def test_saturation_scales_deviation_from_channel_mean():
    x = torch.rand(N, 3, 8, 8) * 2 - 1
    y = rand_saturation(x)
    mean = x.mean(1, keepdim=True)
    assert torch.allclose(y.mean(1, keepdim=True), mean, atol=1e-5)
    factor = ((y - mean) * (x - mean)).sum((1, 2, 3)) / (x - mean).square().sum((1, 2, 3))
    assert torch.allclose(y - mean, factor[:, None, None, None] * (x - mean), atol=1e-5)
    assert factor.min() >= 0 and factor.max() < 2 and abs(factor.mean() - 1) < 0.1  # U(0, 2)


def test_contrast_scales_deviation_from_image_mean():
    x = torch.rand(N, 3, 8, 8) * 2 - 1
    y = rand_contrast(x)
    mean = x.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(y.mean((1, 2, 3), keepdim=True), mean, atol=1e-5)
    factor = ((y - mean) * (x - mean)).sum((1, 2, 3)) / (x - mean).square().sum((1, 2, 3))
    assert torch.allclose(y - mean, factor[:, None, None, None] * (x - mean), atol=1e-5)
    assert factor.min() >= 0.5 and factor.max() < 1.5 and abs(factor.mean() - 1) < 0.05  # U(0.5, 1.5)


@pytest.mark.parametrize("H, W", [(16, 16), (12, 20)])
def test_translation_shifts_by_at_most_an_eighth_with_zero_fill(H, W):
    # Every pixel has a unique positive value, so each output pixel names its source (0 = fill).
    x = (torch.arange(H * W, dtype=torch.float32) + 1).reshape(1, 1, H, W).repeat(N, 2, 1, 1)
    y = rand_translation(x)
    shift_h, shift_w = int(H * 0.125 + 0.5), int(W * 0.125 + 0.5)
    seen = set()
    for img, src in zip(y[:, 0], x[:, 0]):
        nonzero = img.nonzero()
        i, j = nonzero[0].tolist()
        v = int(img[i, j]) - 1
        di, dj = v // W - i, v % W - j
        assert abs(di) <= shift_h and abs(dj) <= shift_w
        expected = torch.zeros(H, W)
        expected[max(0, -di) : H - max(0, di), max(0, -dj) : W - max(0, dj)] = src[
            max(0, di) : H - max(0, -di), max(0, dj) : W - max(0, -dj)
        ]
        assert torch.equal(img, expected)
        seen.add((di, dj))
    assert len(seen) == (2 * shift_h + 1) * (2 * shift_w + 1)  # every offset in [-s, s]^2 occurs
    assert torch.equal(y[:, 0], y[:, 1])  # the same shift for all channels


@pytest.mark.parametrize("size", [16, 15])
def test_cutout_zeroes_a_square_of_half_the_size(size):
    y = rand_cutout(torch.ones(N, 3, size, size))
    side = int(size * 0.5 + 0.5)
    assert torch.equal(y[:, 0], y[:, 2])
    full = 0
    for img in y[:, 0]:
        rows, cols = (img == 0).nonzero().unbind(1)
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert (img == 0).sum() == h * w and h <= side and w <= side  # one axis-aligned rectangle
        full += int(h == side and w == side)
    assert full > N // 6  # unclipped squares (about 1/4 of them) have exactly the side
    assert set(y.unique().tolist()) == {0.0, 1.0}


def test_policy_order_and_default():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert DiffAugment().policy == ["color", "translation", "cutout"]
    torch.manual_seed(3)
    got = DiffAugment("translation,color")(x)
    torch.manual_seed(3)
    expected = rand_contrast(rand_saturation(rand_brightness(rand_translation(x))))
    assert torch.allclose(got, expected)
    torch.manual_seed(3)
    assert not torch.allclose(DiffAugment("color,translation")(x), got)
    assert DiffAugment("")(x) is x


def test_unknown_policy_is_a_user_error():
    with pytest.raises(UserError, match="colour"):
        DiffAugment("colour,cutout")


def test_gradients_and_double_backward():
    x = (torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1).requires_grad_()
    aug = DiffAugment()
    (grad,) = torch.autograd.grad(aug(x).square().sum(), x, create_graph=True)
    assert grad.abs().sum() > 0
    grad.square().sum().backward()
    assert torch.isfinite(x.grad).all()
    torch.manual_seed(5)
    fixed_seed = lambda img: (torch.manual_seed(5), aug(img))[1]  # noqa: E731 (same draws every call)
    assert torch.autograd.gradgradcheck(fixed_seed, (torch.rand(1, 3, 8, 8, dtype=torch.float64, requires_grad=True),))
