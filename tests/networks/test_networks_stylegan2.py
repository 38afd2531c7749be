"""StyleGAN2 G and D: defining properties, parameter counts of the official networks, persistence."""

import json

import pytest
import torch
from conformance_data import REASON, conformance_dir
from tiny import tiny_network

import styleforge.networks  # noqa: F401  (registers the networks)
from styleforge.networks.discriminator import MinibatchStdLayer, StyleGAN2Discriminator
from styleforge.networks.generator import StyleGAN2Generator, style_mix
from styleforge.networks.persistence import load_network, save_network
from styleforge.registry import DISCRIMINATORS, GENERATORS


def tiny_G(res=16, c_dim=0, arch="skip") -> StyleGAN2Generator:
    return tiny_network("G", img_resolution=res, c_dim=c_dim, g_architecture=arch, z_dim=16, w_dim=16,
                        mapping_layers=2, channel_base=64, channel_max=8)


def tiny_D(res=16, c_dim=0, arch="resnet") -> StyleGAN2Discriminator:
    return tiny_network("D", overrides=dict(mapping_kwargs=dict(num_layers=2)), img_resolution=res, c_dim=c_dim,
                        d_architecture=arch, channel_base=64, channel_max=8)


def test_registered_by_name():
    assert GENERATORS.get("stylegan2") is StyleGAN2Generator
    assert DISCRIMINATORS.get("stylegan2") is StyleGAN2Discriminator


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("c_dim", [0, 5])
def test_forward_backward_every_architecture(arch, c_dim):
    torch.manual_seed(0)
    G, D = tiny_G(c_dim=c_dim, arch=arch), tiny_D(c_dim=c_dim, arch=arch)
    z, c = torch.randn(4, 16), torch.eye(5)[:4] if c_dim else torch.zeros(4, 0)
    img = G(z, c)
    assert img.shape == (4, 3, 16, 16) and torch.isfinite(img).all()
    logits = D(img, c)
    assert logits.shape == (4, 1)
    logits.sum().backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)


def test_truncation_psi_zero_returns_w_avg():
    G = tiny_G()
    G.mapping.w_avg.normal_()
    ws = G.mapping(torch.randn(3, 16), None, truncation_psi=0)
    assert torch.allclose(ws, G.mapping.w_avg.expand_as(ws))
    ws = G.mapping(torch.randn(3, 16), None, truncation_psi=0, truncation_cutoff=2)
    assert torch.allclose(ws[:, :2], G.mapping.w_avg.expand(3, 2, -1))
    assert not torch.allclose(ws[:, 2], G.mapping.w_avg.expand(3, -1))


def test_w_avg_tracked_only_in_training_with_update_emas():
    G = tiny_G()
    z = torch.randn(8, 16)
    G.eval()(z, None, update_emas=True)
    G.train()(z, None)
    assert torch.all(G.mapping.w_avg == 0)
    G(z, None, update_emas=True)
    w = G.mapping(z, None)[:, 0]
    assert torch.allclose(G.mapping.w_avg, 0.005 * w.mean(0), atol=1e-6)  # lerp(mean, 0, 0.995)


def test_noise_modes():
    G = tiny_G().eval()
    for layer in [G.synthesis.b8.conv0, G.synthesis.b16.conv1]:
        layer.noise_strength.data.fill_(0.5)
    z = torch.randn(2, 16)
    assert torch.equal(G(z, None, noise_mode="const"), G(z, None, noise_mode="const"))
    assert not torch.equal(G(z, None, noise_mode="random"), G(z, None, noise_mode="random"))
    assert not torch.equal(G(z, None, noise_mode="const"), G(z, None, noise_mode="none"))
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, None, noise_mode="fixed")


def test_style_mixing_uses_first_ws_before_crossover_and_second_after():
    ws1, ws2 = torch.zeros(2, 8, 4), torch.ones(2, 8, 4)
    mixed = style_mix(ws1, ws2, 3)
    assert torch.all(mixed[:, :3] == 0) and torch.all(mixed[:, 3:] == 1)
    mixed = style_mix(ws1, ws2, torch.tensor([1, 6]))
    assert mixed[0, :, 0].tolist() == [0] + [1] * 7 and mixed[1, :, 0].tolist() == [0] * 6 + [1] * 2
    # In G: the layers before the crossover see only ws1 -> the coarse block's output is ws1's.
    G = tiny_G().eval()
    ws1, ws2 = G.mapping(torch.randn(1, 16), None), G.mapping(torch.randn(1, 16), None)
    x1, _ = G.synthesis.b4(None, None, ws1[:, :2], noise_mode="const")
    xm, _ = G.synthesis.b4(None, None, style_mix(ws1, ws2, 1)[:, :2], noise_mode="const")
    assert torch.equal(x1, xm)


def test_minibatch_std_groups_are_strided():
    x = torch.zeros(4, 2, 1, 1)
    x[0], x[2] = 1.0, -1.0  # group size 2 -> groups {0, 2} and {1, 3}
    y = MinibatchStdLayer(group_size=2)(x)[:, 2, 0, 0]
    assert y[0] == y[2] and y[1] == y[3] and y[0] > 0.9 and y[1] < 1e-3


def test_save_load_round_trip(tmp_path):
    G = tiny_G(c_dim=3, arch="resnet").eval()
    D = tiny_D(c_dim=3, arch="skip").eval()
    z, c = torch.randn(2, 16), torch.eye(3)[:2]
    for net, args in [(G, (z, c)), (D, (G(z, c, noise_mode="const"), c))]:
        save_network(net, tmp_path / "net.safetensors")
        loaded = load_network(tmp_path / "net.safetensors")
        assert type(loaded) is type(net)
        kwargs = dict(noise_mode="const") if net is G else {}
        assert torch.equal(loaded(*args, **kwargs), net(*args, **kwargs))


def test_blocks_are_addressable_by_resolution():
    G, D = tiny_G(res=32), tiny_D(res=32)
    assert list(G.synthesis.blocks) == [4, 8, 16, 32]
    assert list(D.blocks) == [32, 16, 8, 4]
    x, _ = D.blocks[32](None, torch.randn(2, 3, 32, 32))
    assert x.shape[-1] == 16


def _param_count_rows():
    data = conformance_dir()
    if data is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason=REASON))]
    return json.loads((data / "param_counts.json").read_text())["rows"]


def _row_id(row):
    if row is None:
        return "no-data"
    return "-".join(str(row[k]) for k in ("net", "res", "architecture", "channel_base", "mapping_layers", "c_dim")
                    if k in row)


@pytest.mark.parametrize("row", _param_count_rows(), ids=_row_id)
def test_parameter_and_buffer_counts_match_official(row):
    with torch.device("meta"):
        if row["net"] == "G":
            net = StyleGAN2Generator(
                c_dim=row.get("c_dim", 0), img_resolution=row["res"],
                mapping_kwargs=dict(num_layers=row["mapping_layers"]),
                synthesis_kwargs=dict(architecture=row["architecture"], channel_base=row["channel_base"],
                                      channel_max=row["channel_max"]))
        else:
            net = StyleGAN2Discriminator(c_dim=row.get("c_dim", 0), img_resolution=row["res"],
                                         architecture=row["architecture"], channel_base=row["channel_base"],
                                         channel_max=row["channel_max"])
    assert sum(p.numel() for p in net.parameters()) == row["params"]
    assert sum(b.numel() for b in net.buffers()) == row["buffers"]


def test_reduced_precision_blocks_on_request():
    torch.manual_seed(0)
    G = tiny_network("G", z_dim=16, w_dim=16, mapping_layers=2, channel_base=64, channel_max=8, num_fp16_res=2,
                     conv_clamp=256).eval()
    D = tiny_network("D", channel_base=64, channel_max=8, num_fp16_res=2, conv_clamp=256)
    z = torch.randn(4, 16)
    reference = G(z, None, noise_mode="const")
    assert torch.equal(G(z, None, noise_mode="const", force_fp32=True), reference)  # CPU: fp32 unless asked
    for net in (G.synthesis, D):
        net.reduced_dtype, net.reduced_on_cpu = torch.bfloat16, True
    img = G(z, None, noise_mode="const")
    assert img.dtype == torch.float32 and not torch.equal(img, reference)
    assert (img - reference).abs().max() < 0.1 * reference.abs().max()
    x, _ = G.synthesis.b16(torch.randn(4, 8, 8, 8), None, torch.randn(4, 3, 16), G.synthesis.precision(z.device))
    assert x.dtype == torch.bfloat16
    logits = D(img, None)
    assert logits.dtype == torch.float32 and torch.allclose(logits, D(img, None, force_fp32=True), atol=0.05)


def test_single_channel_images_keep_d_in_channels_last_on_cpu():
    """A 1-channel image is NCHW and channels_last at once, and a convolution of it returns NCHW: D converts
    fromrgb's output, so its first block does not fall back to slower NCHW kernels."""
    D = tiny_network("D", img_channels=1, channel_base=64, channel_max=8)
    seen = []
    D.b16.conv0.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    D(torch.randn(4, 1, 16, 16), None)
    assert seen[0].is_contiguous(memory_format=torch.channels_last) and not seen[0].is_contiguous()
