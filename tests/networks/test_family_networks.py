"""StyleGAN v1, ProGAN and MSG-StyleGAN networks: PixelNorm, AdaIN, fade-in, multi-scale outputs, persistence."""

import math

import pytest
import torch
import torch.nn.functional as F
from tiny import tiny_network

import styleforge.networks  # noqa: F401  (registers the networks)
from styleforge.inference.multiscale import msg_scales_grid
from styleforge.networks.msg import COMBINES, Combine, MSGDiscriminator, MSGStyleGAN2Generator, image_pyramid
from styleforge.networks.persistence import load_network, save_network
from styleforge.networks.progan import ProGANDiscriminator, ProGANGenerator, pixel_norm
from styleforge.networks.progressive import reals_at_lod, set_lod
from styleforge.networks.stylegan1 import AdaIN, StyleGAN1Generator, StyleGAN1Layer
from styleforge.registry import DISCRIMINATORS, GENERATORS

FAMILY_G = ("stylegan1", "msg-stylegan1", "progan", "msg-stylegan2")
FAMILY_D = ("stylegan1", "progan", "msg")


def tiny_G(name, res=16, c_dim=0):
    return tiny_network("G", name, img_resolution=res, c_dim=c_dim, z_dim=12, w_dim=12, mapping_layers=2)


def tiny_D(name, res=16, c_dim=0, **kwargs):
    return tiny_network("D", name, kwargs, img_resolution=res, c_dim=c_dim)


@pytest.mark.parametrize("name", FAMILY_G)
@pytest.mark.parametrize("c_dim", [0, 4])
def test_generators_follow_the_interface_and_survive_save_load(name, c_dim, tmp_path):
    G = tiny_G(name, c_dim=c_dim)
    z, c = torch.randn(4, 12), torch.eye(4)[:, :c_dim]
    ws = G.mapping(z, c)
    assert ws.shape == (4, G.num_ws, G.w_dim) and G.mapping.w_avg.shape == (G.w_dim,)
    img = G.synthesis(ws, noise_mode="const")
    assert img.shape == (4, 3, 16, 16) and torch.isfinite(img).all()
    assert torch.equal(G(z, c, noise_mode="const"), img)
    torch.testing.assert_close(G.mapping(z, c, truncation_psi=0), G.mapping.w_avg.expand_as(ws))
    save_network(G, tmp_path / "G.safetensors")
    loaded = load_network(tmp_path / "G.safetensors")
    assert type(loaded) is type(G)
    assert torch.equal(loaded(z, c, noise_mode="const"), img)


@pytest.mark.parametrize("name", FAMILY_D)
def test_discriminators_forward_backward_and_survive_save_load(name, tmp_path):
    D = tiny_D(name, c_dim=3)
    img, c = torch.randn(4, 3, 16, 16, requires_grad=True), torch.eye(3)[[0, 1, 2, 0]]
    logits = D(img, c)
    assert logits.shape == (4, 1)
    logits.sum().backward()
    assert img.grad.abs().sum() > 0
    save_network(D, tmp_path / "D.safetensors")
    assert torch.equal(load_network(tmp_path / "D.safetensors")(img, c), logits)


def test_pixel_norm_gives_unit_mean_square_per_pixel_in_progan_g():
    x = torch.randn(3, 7, 5, 5) * torch.rand(3, 1, 5, 5) * 10
    torch.testing.assert_close(pixel_norm(x).square().mean(dim=1), torch.ones(3, 5, 5))
    G = tiny_G("progan")
    outputs = []
    for block in G.synthesis.blocks:  # every conv output goes through PixelNorm
        block.register_forward_hook(lambda module, args, out: outputs.append(out))
    G(torch.randn(2, 12) * 5, None)
    assert len(outputs) == 3
    for out in outputs:
        torch.testing.assert_close(out.square().mean(dim=1), torch.ones_like(out[:, 0]))
    torch.testing.assert_close(G.mapping(torch.randn(2, 12) * 5, None).square().mean(dim=2), torch.ones(2, 1))


def test_adain_output_has_exactly_the_style_mean_and_std():
    adain = AdaIN(channels=6, w_dim=5)
    x = torch.randn(2, 6, 8, 8) * 3 + 1.5
    w = torch.randn(2, 5)
    ys, yb = adain.style(w).chunk(2, dim=1)  # [N, C] each
    out = adain(x, w)
    torch.testing.assert_close(out.mean(dim=[2, 3]), yb, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=[2, 3], unbiased=False), (1 + ys).abs(), atol=1e-4, rtol=1e-4)


def test_stylegan1_layer_upsamples_as_nearest_plus_conv_then_blurs():
    layer = StyleGAN1Layer(4, 5, w_dim=3, resolution=12, up=True)
    x = torch.randn(2, 4, 6, 6)
    w = layer.conv.weight * layer.conv.weight_gain
    expected = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w.flip([2, 3]), padding=1)
    torch.testing.assert_close(layer.conv(x), expected)
    torch.testing.assert_close(layer.blur_filter * 16, torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]))
    assert layer.noise_strength.shape == (5,) and not layer.noise_strength.any()  # per channel, init 0
    assert torch.equal(tiny_G("stylegan1").synthesis.b4.const, torch.ones(16, 4, 4))  # learned constant


@pytest.mark.parametrize("name", ["progan", "stylegan1"])
def test_generator_fade_in_blends_new_and_upscaled_old_output(name):
    G = tiny_G(name, res=16)
    z = torch.randn(3, 12)

    def at(lod):
        set_lod(G, lod)
        return G(z, None, noise_mode="const")

    new, old = at(1.0), at(2.0)  # 8x8 alone; 4x4 alone (both upsampled to 16x16)
    assert torch.equal(old, F.interpolate(old[:, :, ::4, ::4], scale_factor=4, mode="nearest"))
    assert torch.equal(new, F.interpolate(new[:, :, ::2, ::2], scale_factor=2, mode="nearest"))
    torch.testing.assert_close(at(2 - 2**-20), old, atol=1e-4, rtol=0)  # start of the fade: alpha = 0
    for frac in (0.25, 0.5, 0.75):
        torch.testing.assert_close(at(1 + frac), torch.lerp(new, old, frac))
    assert (at(0.0) - at(1.0)).abs().max() > 1e-3  # the 16x16 level shows at lod 0
    mid = at(1.5)
    with torch.no_grad():
        G.synthesis.b4.torgb.weight.mul_(2)  # the old level's ToRGB: unused at alpha = 1, used in the fade
    assert torch.equal(at(1.0), new) and not torch.allclose(at(1.5), mid)


@pytest.mark.parametrize("name", ["progan", "stylegan1"])
def test_discriminator_fade_in_reads_the_new_block_and_the_old_fromrgb(name):
    D = tiny_D(name, res=16)
    img = torch.randn(4, 3, 16, 16)

    def at(lod):
        set_lod(D, lod)
        return D(img)

    start, new_only, old_only = at(2 - 2**-20), at(1.0), at(2.0)
    torch.testing.assert_close(start, old_only, atol=1e-4, rtol=0)  # alpha = 0: the 4x4 level alone
    mid = at(1.5)
    with torch.no_grad():
        D.b4.fromrgb.weight.mul_(2)  # the old level's FromRGB: unused at lod 1, used in the fade
    assert torch.equal(at(1.0), new_only) and not torch.allclose(at(1.5), mid)
    with torch.no_grad():
        D.b8.conv1.weight.mul_(2)  # the new block: unused at lod 2
    assert not torch.allclose(at(1.0), new_only)
    set_lod(D, 2.0)
    torch.testing.assert_close(D(img), D(F.interpolate(F.avg_pool2d(img, 4), scale_factor=4)))  # sees 4x4


def test_reals_at_lod_are_box_downsampled_blended_and_upsampled():
    img = torch.randn(2, 3, 16, 16)
    up = lambda x, f: F.interpolate(x, scale_factor=f, mode="nearest")  # noqa: E731
    assert torch.equal(reals_at_lod(img, 0.0), img)
    torch.testing.assert_close(reals_at_lod(img, 2.0), up(F.avg_pool2d(img, 4), 4))
    lower, higher = up(F.avg_pool2d(img, 4), 2), F.avg_pool2d(img, 2)
    torch.testing.assert_close(reals_at_lod(img, 1.25), up(torch.lerp(higher, lower, 0.25), 2))


def test_msg_generator_returns_every_scale_and_d_gradient_reaches_every_torgb():
    G, D = tiny_G("msg-stylegan2", res=32), tiny_D("msg", res=32)
    ws = G.mapping(torch.randn(4, 12), None)
    images = G.synthesis(ws, noise_mode="const", return_all_scales=True)
    assert [img.shape[-1] for img in images] == [4, 8, 16, 32]
    assert torch.equal(images[-1], G.synthesis(ws, noise_mode="const"))
    D(images).sum().backward()
    for res in (4, 8, 16, 32):
        torgb = getattr(G.synthesis, f"torgb{res}")
        assert torgb.weight.grad is not None and torgb.weight.grad.abs().sum() > 0, res
    assert not hasattr(G.synthesis.b32, "torgb")  # only the per-scale linear ToRGBs remain
    with torch.no_grad():  # D reads every scale: changing any one changes its output
        logits = D(images)
        for i in range(len(images)):
            changed = [img + (0.5 if j == i else 0) for j, img in enumerate(images)]
            assert not torch.allclose(D(changed), logits), i


@pytest.mark.parametrize("combine, channels", [("simple", 8 + 3), ("lin_cat", 8 + 4), ("cat_lin", 8)])
def test_combine_functions_give_their_channel_counts(combine, channels):
    module = Combine(combine, channels=8, img_channels=3)
    out = module(torch.randn(2, 8, 4, 4), torch.randn(2, 3, 4, 4))
    assert module.out_channels == channels and out.shape == (2, channels, 4, 4)
    D = tiny_D("msg", res=16, combine=combine)  # 16 channels at 8x8, + 1 minibatch-stddev channel
    assert D.b8.conv0.weight.shape[1] == Combine(combine, 16, 3).out_channels + 1
    assert D.b16.combine is None and D.b4.conv.weight.shape[1] == Combine(combine, 16, 3).out_channels + 1
    assert combine in COMBINES


def test_msg_discriminator_builds_the_pyramid_of_a_single_image_by_average_pooling():
    D = tiny_D("msg", res=16)
    img = torch.randn(2, 3, 16, 16)
    pyramid = image_pyramid(img, 3)
    torch.testing.assert_close(pyramid[0], F.avg_pool2d(img, 4))
    assert torch.equal(D(img), D(pyramid))
    with pytest.raises(ValueError, match="expects 3 scales"):
        D(pyramid[1:])


def test_msg_scales_grid_lays_out_every_scale_of_every_latent():
    G = tiny_G("msg-stylegan1")
    grid = msg_scales_grid(G, torch.randn(2, 12))
    assert grid.shape == (2 * 16, 3 * 16, 3) and grid.dtype.name == "uint8"
    assert (grid[:16, :16] == grid[:16, :16][::4, ::4].repeat(4, 0).repeat(4, 1)).all()  # 4x4 scale, enlarged
    with pytest.raises(Exception, match="multi-scale"):
        msg_scales_grid(tiny_network("G", img_resolution=8, img_channels=1), torch.randn(1, 8))


def test_classes_registered_by_name():
    assert GENERATORS.get("stylegan1") is StyleGAN1Generator and GENERATORS.get("progan") is ProGANGenerator
    assert GENERATORS.get("msg-stylegan2") is MSGStyleGAN2Generator
    assert DISCRIMINATORS.get("msg") is MSGDiscriminator and DISCRIMINATORS.get("progan") is ProGANDiscriminator
    assert tiny_G("stylegan1").num_ws == 2 * (math.log2(16) - 1)
