"""ADA: identity at p=0, each op's distribution, the resampling's accuracy, and first/second derivatives."""

import math

import pytest
import torch
import torch.nn.functional as F

from styleforge.augment import AdaptiveAugment
from styleforge.augment import matrices as M
from styleforge.augment.ada import PRESETS
from styleforge.augment.resample import grid_sample
from styleforge.errors import UserError

N_DRAWS = 20000  # parameter draws for the statistical tests: std estimates within ~1%
LUMA = torch.tensor([1.0, 1.0, 1.0]) / math.sqrt(3)


def only(op: str, p: float = 1.0, **options) -> AdaptiveAugment:
    return AdaptiveAugment(preset=None, p=p, **{op: 1}, **options)


def smooth_image(H: int = 16, W: int = 16, N: int = 1) -> torch.Tensor:
    """[N, 3, H, W] low-frequency image in [-1, 1], periodic so that reflection padding stays smooth-ish."""
    y, x = torch.meshgrid(torch.arange(H) / H, torch.arange(W) / W, indexing="ij")
    img = torch.stack([torch.sin(2 * math.pi * x) * torch.cos(2 * math.pi * y), torch.cos(2 * math.pi * (x + y)),
                       0.5 * torch.sin(2 * math.pi * (x - 2 * y))])  # fmt: skip
    return img.expand(N, 3, H, W).clone()


@pytest.mark.parametrize("preset", [*PRESETS, None])
def test_p_zero_is_exact_identity(preset):
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    state = torch.get_rng_state()
    assert AdaptiveAugment(preset, p=0.0)(x) is x
    assert torch.equal(torch.get_rng_state(), state)  # and draws nothing


@pytest.mark.parametrize("size", [(16, 16), (15, 20)])
def test_identity_geometry_reproduces_the_image(size):
    # Pad, 2x upsample, sample at the pixel centres, 2x downsample: sym6 is orthogonal, so this is exact,
    # which pins down the half-pixel conventions of the whole chain.
    x = torch.rand(2, 3, *size) * 2 - 1
    G = torch.eye(3).repeat(2, 1, 1)
    assert torch.allclose(AdaptiveAugment(p=1).apply_geometry(x, G), x, atol=1e-5)


def test_integer_translation_moves_pixels_exactly():
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    one = torch.ones(1)
    out = AdaptiveAugment(p=1).apply_geometry(x, M.translate2d(-2 * one, 3 * one))  # content moves right 2, up 3
    assert torch.allclose(out[..., :13, 2:], x[..., 3:, :14], atol=1e-5)  # the same pixels, inside the crop


def test_blit_matrices_are_pixel_permutations():
    aug = AdaptiveAugment("blit", p=1)
    G = aug.sample_geometry(N_DRAWS, 16, 16, torch.device("cpu"))
    # They map the pixel grid onto itself: integer linear part in {0, +-1} with det +-1, integer translation.
    assert torch.allclose(G, G.round(), atol=1e-6) and G[:, :2, :2].abs().le(1).all()
    assert torch.allclose(torch.linalg.det(G[:, :2, :2]).abs(), torch.ones(N_DRAWS))
    assert G[:, :2, 2].abs().max().round() == 2  # round(0.125 * 16)
    # With p=1: det -1 (a flip) for half of them, 4 rotations equally likely.
    assert abs((torch.linalg.det(G[:, :2, :2]) < 0).float().mean() - 0.5) < 0.01


def test_xflip_and_rot90_resample_to_the_permuted_image():
    # The flip runs through the same resampling as every geometric op, which is exact only for
    # even shifts (the filter is not symmetric): on a smooth image the error is small.
    x = smooth_image()
    aug, one = AdaptiveAugment(p=1), torch.ones(1)
    assert (aug.apply_geometry(x, M.scale2d(-one, one)) - x.flip(3)).abs().max() < 0.06
    assert (aug.apply_geometry(x, M.rotate2d(one * math.pi / 2)) - x.rot90(1, (2, 3))).abs().max() < 0.06


@pytest.mark.parametrize(
    "G",
    [M.rotate2d(torch.tensor([0.7])), M.scale2d(torch.tensor([1.25]), 1.25), M.scale2d(torch.tensor([0.8]), 1.25),
     M.translate2d(torch.tensor([1.4]), -0.6), M.rotate2d(torch.tensor([2.0])) @ M.scale2d(torch.tensor([1.1]), 0.9)],
    ids=["rotate", "zoom-out", "aniso", "frac-translate", "composed"],
)  # fmt: skip
def test_op_then_inverse_returns_the_image(G):
    x = smooth_image(32, 32)
    aug = AdaptiveAugment(p=1)
    back = aug.apply_geometry(aug.apply_geometry(x, G), torch.linalg.inv(G))
    err = (back - x)[..., 8:24, 8:24].abs()  # the centre, which never left the frame
    assert err.max() < 0.01


def test_brightness_and_contrast_distributions():
    C = only("brightness").sample_color(N_DRAWS, 3, "cpu")
    assert torch.equal(C[:, :3, :3], torch.eye(3).expand(N_DRAWS, 3, 3))
    b = C[:, :3, 3]
    assert torch.equal(b[:, 0], b[:, 1]) and torch.equal(b[:, 0], b[:, 2])
    assert b[:, 0].mean().abs() < 0.01 and abs(b[:, 0].std() - 0.2) < 0.01
    C = only("contrast").sample_color(N_DRAWS, 3, "cpu")
    c = C[:, 0, 0]
    assert torch.allclose(C[:, :3, :3], c[:, None, None] * torch.eye(3))
    assert abs(c.log2().std() - 0.5) < 0.01


def test_probability_multiplies_per_sample():
    C = only("brightness", p=0.3).sample_color(N_DRAWS, 3, "cpu")
    assert abs((C[:, 0, 3] != 0).float().mean() - 0.3) < 0.01
    C = only("brightness", p=0.6, brightness_std=0.1).sample_color(N_DRAWS, 3, "cpu")
    fired = C[:, 0, 3][C[:, 0, 3] != 0]
    assert abs(len(fired) / N_DRAWS - 0.6) < 0.02 and abs(fired.std() - 0.1) < 0.005


def test_lumaflip_reflects_luma_and_keeps_chroma():
    C = only("lumaflip").sample_color(N_DRAWS, 3, "cpu")[:, :3, :3]
    luma = C @ LUMA
    is_flip = (luma @ LUMA) < 0
    assert abs(is_flip.float().mean() - 0.5) < 0.01
    assert torch.allclose(luma[is_flip], -LUMA.expand_as(luma[is_flip]), atol=1e-6)
    chroma = torch.randn(3)
    chroma -= (chroma @ LUMA) * LUMA
    assert torch.allclose(C @ chroma, chroma.expand(N_DRAWS, 3), atol=1e-6)  # chroma and its magnitude kept


def test_hue_rotation_keeps_luma_and_is_uniform():
    aug = only("hue")
    C4 = aug.sample_color(N_DRAWS, 3, "cpu")
    C = C4[:, :3, :3]
    assert torch.allclose(C @ LUMA, LUMA.expand(N_DRAWS, 3), atol=1e-6)
    assert torch.allclose(C @ C.transpose(1, 2), torch.eye(3).expand(N_DRAWS, 3, 3), atol=1e-5)  # a rotation
    cos_theta = (C.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2  # trace = 1 + 2 cos(theta)
    assert cos_theta.mean().abs() < 0.02 and abs(cos_theta.square().mean() - 0.5) < 0.02  # theta ~ U(-pi, pi)
    # On images: each pixel's channel mean (luma) stays.
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    assert torch.allclose(aug.apply_color(x, C4[:4]).mean(1), x.mean(1), atol=1e-5)


def test_saturation_scales_chroma_only():
    C = only("saturation").sample_color(N_DRAWS, 3, "cpu")[:, :3, :3]
    assert torch.allclose(C @ LUMA, LUMA.expand(N_DRAWS, 3), atol=1e-5)
    chroma = torch.tensor([1.0, -1.0, 0.0]) / math.sqrt(2)
    s = (C @ chroma) @ chroma
    assert torch.allclose(C @ chroma, s[:, None] * chroma, atol=1e-4)
    assert abs(s.log2().std() - 1.0) < 0.03


def test_geometric_scale_distributions():
    G = only("scale").sample_geometry(N_DRAWS, 16, 16, "cpu")
    assert torch.allclose(G[:, 0, 0], G[:, 1, 1])
    assert G[:, 0, 0].log2().mean().abs() < 0.01 and abs(G[:, 0, 0].log2().std() - 0.2) < 0.01
    G = only("aniso").sample_geometry(N_DRAWS, 16, 16, "cpu")
    assert torch.allclose(G[:, 0, 0] * G[:, 1, 1], torch.ones(N_DRAWS))
    assert abs(G[:, 0, 0].log2().std() - 0.2) < 0.01


def test_translation_distributions():
    G = only("xfrac").sample_geometry(N_DRAWS, 16, 32, "cpu")
    assert abs(G[:, 0, 2].std() - 0.125 * 32) < 0.1 and abs(G[:, 1, 2].std() - 0.125 * 16) < 0.05
    G = only("xint").sample_geometry(N_DRAWS, 32, 32, "cpu")
    t = G[:, :2, 2]
    assert torch.equal(t, t.round()) and t.abs().max() == 4 and set(t.unique().tolist()) == set(range(-4, 5))


def test_rotation_fires_with_total_probability_p():
    p = 0.5
    G = only("rotate", p=p).sample_geometry(N_DRAWS, 16, 16, "cpu")
    rotated = (G[:, 0, 1].abs() > 1e-6).float().mean()  # pre or post rotation fired
    assert abs(rotated - p) < 0.01
    theta = torch.atan2(G[:, 1, 0], G[:, 0, 0])  # with both off or one on: uniform on the circle
    assert theta.cos().square().mean().sub(0.5 + 0.5 * (1 - p)).abs() < 0.01


def test_filter_noise_and_cutout():
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    aug = only("imgfilter")
    assert torch.allclose(aug.apply_filter(x, torch.ones(2, 4)), x, atol=1e-5)  # unit gains: the bands sum to x
    gains = only("imgfilter", imgfilter_bands=(0, 0, 0, 1)).sample_filter_gains(N_DRAWS, "cpu")
    assert abs((gains[:, 3] / gains[:, 0]).log2().std() - 1) < 0.03  # top band amplified by 2^N(0, 1)
    expected_power = torch.tensor([10, 1, 1, 1]) / 13
    assert torch.allclose((gains.square() * expected_power).sum(1), torch.ones(N_DRAWS))  # power kept
    boosted = aug.apply_filter(x, torch.tensor([[1.0, 1, 1, 4]] * 2))
    high = lambda img: (img[..., 1:] - img[..., :-1]).square().mean()  # noqa: E731
    assert high(boosted) > 4 * high(x)

    draw = only("noise").sample([N_DRAWS, 1, 2, 2], "cpu")
    sigma = draw.noise.flatten(1).std(dim=1)
    assert abs(sigma.mean() - 0.1 * math.sqrt(2 / math.pi)) < 0.02  # half-normal sigma, std 0.1

    ones = torch.ones(64, 1, 16, 16)
    out = only("cutout").apply(ones, only("cutout").sample(ones.shape, "cpu"))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 64 and zeros.float().mean() < 64  # an 8x8 square, clipped at the borders


def test_forward_shapes_dtypes_channels_and_determinism():
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    aug = AdaptiveAugment("bgcfnc", p=0.8)
    with pytest.raises(UserError, match="filter"):
        aug(x)  # 16 px is too small for the 43-tap band filters
    aug = AdaptiveAugment("bgc", p=0.8)
    torch.manual_seed(1)
    a = aug(x)
    torch.manual_seed(1)
    assert torch.equal(a, aug(x)) and a.shape == x.shape and not torch.equal(a, x)
    assert aug(x[:, :1]).shape == (3, 1, 16, 16)  # greyscale
    torch.manual_seed(1)
    b = aug(x.bfloat16())
    assert b.dtype == torch.bfloat16 and (b.float() - a).abs().max() < 0.05
    assert AdaptiveAugment("bgcfnc", p=1)(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_bad_arguments_raise_user_errors():
    with pytest.raises(UserError, match="preset 'bgx'"):
        AdaptiveAugment("bgx")
    with pytest.raises(UserError, match="xflp"):
        AdaptiveAugment(xflp=1)
    with pytest.raises(UserError, match="-0.1"):
        AdaptiveAugment().p = -0.1
    with pytest.raises(UserError, match="4"):
        AdaptiveAugment(p=0.5)(torch.zeros(1, 4, 8, 8))


def test_gradients_reach_the_input():
    x = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_()
    AdaptiveAugment("bgc", p=1)(x).square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_second_derivatives_match_finite_differences():
    aug = AdaptiveAugment("bgc", p=1)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 6, 6, dtype=torch.float64) * 2 - 1
    draw = aug.sample(x.shape, "cpu")
    f = lambda img: aug.apply(img, draw)  # noqa: E731 (fixed parameters: a deterministic function)
    assert torch.autograd.gradcheck(f, (x.requires_grad_(),))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_grid_sample_double_backward_matches_torch():
    # The R1 case: gradient of a penalty on d D(aug(x)) / dx w.r.t. D's weights.
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    theta = torch.tensor([[[0.9, 0.3, 0.1], [-0.2, 1.1, -0.05]]], dtype=torch.float64).repeat(2, 1, 1)
    grid = F.affine_grid(theta, [2, 3, 8, 8], align_corners=False)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda img: grid_sample(img, grid), (x,))

    def r1_weight_grad(sample):
        logits = F.conv2d(sample(x), weight).square().sum()
        (grad_x,) = torch.autograd.grad(logits, x, create_graph=True)
        return torch.autograd.grad(grad_x.square().sum(), weight)[0]

    ours = r1_weight_grad(lambda img: grid_sample(img, grid))
    reference = r1_weight_grad(lambda img: F.grid_sample(img, grid, align_corners=False))  # torch >= 2.x has it
    assert torch.allclose(ours, reference)
