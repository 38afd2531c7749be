"""EqGAN-SA's generator side: random multi-level heatmaps, their encoders, the spatial encoding layer."""

import pytest
import torch

from styleforge.networks.generator import StyleGAN2Generator
from styleforge.networks.heatmaps import HeatmapSpec, render_gaussians, sample_heatmap_spec
from styleforge.networks.persistence import load_network, save_network
from styleforge.networks.sel import SpatialEncodingLayer


def sel_G(res=32, arch="skip"):
    return StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=res, img_channels=3,
                              mapping_kwargs=dict(num_layers=1),
                              synthesis_kwargs=dict(channel_base=128, channel_max=8, architecture=arch, use_sel=True))


# --- heatmaps --------------------------------------------------------------------------------------------

def test_levels_have_1_2_4_peaks_at_their_centres_and_values_in_range():
    torch.manual_seed(0)
    R = 33  # odd: the grid 2i/(R-1) - 1 has a point every 1/16
    spec = sample_heatmap_spec(64)
    maps = spec.render(R)
    grid = torch.linspace(-1, 1, R)
    for level, (hm, centres) in enumerate(zip(maps, spec.centres), start=1):
        k = (1, 2, 4)[level - 1]
        assert hm.shape == (64, k, R, R)
        assert hm.min() >= 0.01 and hm.max() <= 1.01 + 1e-6
        # One gaussian per channel: its maximum is at the grid point nearest the centre (clamped to the grid).
        flat_argmax = hm.flatten(2).argmax(dim=2)  # [N, k]
        nearest = (grid.reshape(1, 1, 1, -1) - centres.clamp(-1, 1).unsqueeze(-1)).abs().argmin(dim=-1)  # [N, k, 2]
        assert torch.equal(flat_argmax, nearest[..., 0] * R + nearest[..., 1])


def test_well_separated_centres_give_exactly_that_many_peaks():
    R = 32
    centres = torch.tensor([[[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]])  # [1, 4, 2]
    total = render_gaussians(centres, torch.full([1, 4], 0.02), R).sum(dim=1)[0]  # [R, R]
    padded = torch.nn.functional.pad(total, (1, 1, 1, 1), value=-1)
    neighbours = torch.stack([padded[1 + dy:R + 1 + dy, 1 + dx:R + 1 + dx]
                              for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    assert int((total > neighbours.amax(dim=0)).sum()) == 4


def test_centres_and_sigmas_follow_the_specified_distributions():
    torch.manual_seed(1)
    spec = sample_heatmap_spec(4000)
    c1, c2, c3 = spec.centres
    s1, s2, s3 = spec.sigmas
    assert c1.abs().max() <= 0.75 and 0.2 < c1[c1.abs() < 0.7].std() < 0.4  # N(0, 0.33^2), clamped
    assert (c2 - c1).abs().max() <= 0.4 and (c2 - c1).abs().max() > 0.39  # c + (U - 0.5) * 0.8
    assert (c3 - c1).abs().max() <= 0.8 and (c3 - c1).abs().max() > 0.79  # c + (U - 0.5) * 1.6
    assert s1.unique().numel() == 1 and 0.5 <= s1[0, 0] <= 1.0  # 0.5 * (1 + U), one per call
    assert s2.min() >= 0.1 / 1.4 and s2.max() <= 1.1 / 1.4 and s2.unique().numel() > 100
    assert s3.min() >= 0.05 and s3.max() <= 0.55


def test_moving_a_spec_moves_the_chosen_levels():
    spec = sample_heatmap_spec(3)
    moved = spec.moved((0.1, -0.2), levels=(1,))
    torch.testing.assert_close(moved.centres[0], spec.centres[0] + torch.tensor([0.1, -0.2]))
    assert torch.equal(moved.centres[1], spec.centres[1]) and torch.equal(moved.centres[2], spec.centres[2])


# --- spatial encoding layer and G --------------------------------------------------------------------------

def test_sel_with_its_last_conv_zeroed_is_the_identity_and_otherwise_depends_on_the_heatmap():
    sel = SpatialEncodingLayer(channels=6, map_dim=32)
    x, hm = torch.randn(2, 6, 8, 8), torch.randn(2, 32, 16, 16)
    assert not torch.allclose(sel(x, hm), x)
    assert not torch.allclose(sel(x, hm), sel(x, hm.flip(-1)))
    with torch.no_grad():
        sel.out.weight.zero_()
        sel.out.bias.zero_()
    assert torch.equal(sel(x, hm), x)


def test_every_layer_and_torgb_has_a_sel_seeing_its_blocks_heatmap_level():
    G = sel_G(res=32)
    syn = G.synthesis
    layers = {n: m for n, m in syn.named_modules() if n.startswith("b") and n.endswith(("conv0", "conv1", "torgb"))}
    assert all(m.sel is not None for m in layers.values())
    map_dims = {n: m.sel.map_dim for n, m in layers.items()}
    assert map_dims == {"b4.conv1": 32, "b4.torgb": 32, "b8.conv0": 32, "b8.conv1": 32, "b8.torgb": 32,
                        "b16.conv0": 32, "b16.conv1": 32, "b16.torgb": 32,
                        "b32.conv0": 96, "b32.conv1": 96, "b32.torgb": 96}
    seen = {}
    for name, layer in layers.items():
        layer.sel.register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, args[1]))
    heatmaps = sample_heatmap_spec(2).render(32)
    features = syn.heatmap_encoder(heatmaps)
    syn(torch.randn(2, syn.num_ws, 8), heatmap=heatmaps)
    level_of_block = {"b4": 4, "b8": 8, "b16": 16, "b32": 32}  # levels 1, 2, 3, then all three
    for name, hm in seen.items():
        torch.testing.assert_close(hm, features[level_of_block[name.split(".")[0]]])
    torch.testing.assert_close(features[32], torch.cat([features[4], features[8], features[16]], dim=1))


def test_explicit_heatmaps_or_centres_decide_the_image(tmp_path):
    torch.manual_seed(0)
    G = sel_G(res=16).eval()
    with torch.no_grad():  # make the SELs matter more than at init
        for m in G.synthesis.modules():
            if isinstance(m, SpatialEncodingLayer):
                m.out.weight.mul_(10)
    z = torch.randn(2, 8)
    spec = sample_heatmap_spec(2)
    img = G(z, None, noise_mode="const", centres=spec)
    assert torch.equal(img, G(z, None, noise_mode="const", heatmap=spec.render(16)))
    assert not torch.allclose(img, G(z, None, noise_mode="const", centres=spec.moved((0.5, 0.5))), atol=1e-4)
    assert not torch.allclose(img, G(z, None, noise_mode="const"), atol=1e-4)  # random heatmaps
    object_centres = torch.tensor([[0.3, -0.3], [0.0, 0.5]])
    assert G(z, None, centres=object_centres).shape == (2, 3, 16, 16)
    # Persistent with its config: the loaded copy generates the same image.
    save_network(G, tmp_path / "G.safetensors")
    loaded = load_network(tmp_path / "G.safetensors")
    assert loaded.init_kwargs["synthesis_kwargs"]["use_sel"] is True
    assert torch.equal(loaded(z, None, noise_mode="const", centres=spec), img)


def test_a_generator_without_sel_refuses_heatmaps():
    G = StyleGAN2Generator(z_dim=8, w_dim=8, img_resolution=8, img_channels=3,
                           synthesis_kwargs=dict(channel_base=64, channel_max=8))
    assert G.synthesis.heatmap_encoder is None
    with pytest.raises(ValueError, match="use_sel"):
        G(torch.randn(1, 8), None, centres=sample_heatmap_spec(1))


def test_a_hand_made_spec_renders_its_levels():
    ks = (1, 2, 4)
    spec = HeatmapSpec(tuple(torch.zeros(2, k, 2) for k in ks), tuple(torch.full([2, k], 0.5) for k in ks))
    maps = spec.render(9)
    assert spec.batch_size == 2 and [m.shape[1] for m in maps] == [1, 2, 4]
    assert torch.allclose(maps[0][:, :, 4, 4], torch.tensor(1.01))  # peak at the centre of the grid


def test_official_eqgan_names_and_arguments_map_to_ours():
    from tools_networks import eqgan_official_state

    from styleforge.official.names import network_from_official, official_kwargs_to_ours, official_name_to_ours

    assert official_name_to_ours("synthesis.hm_conv1_b16.bias", "G") == "synthesis.heatmap_encoder.levels.1.conv1.bias"
    assert official_name_to_ours("synthesis.b32.conv0.sel.output.1.weight", "G") == "synthesis.b32.conv0.sel.out.weight"
    assert official_name_to_ours("synthesis.b4.torgb.sel.sigma.bias", "G") == "synthesis.b4.torgb.sel.gamma.bias"
    ours = sel_G(res=16)
    official_kwargs = dict(ours.init_kwargs, use_sel=True, config_kwargs={},
                           synthesis_kwargs={"channel_base": 128, "channel_max": 8, "architecture": "skip"})
    assert official_kwargs_to_ours(official_kwargs, "G") == ours.init_kwargs
    official_state = eqgan_official_state(ours)
    assert "synthesis.hm_conv0_b8.weight" in official_state and "synthesis.b8.conv1.sel.mu.bias" in official_state
    loaded = network_from_official(official_kwargs, official_state, "G")
    z, spec = torch.randn(2, 8), sample_heatmap_spec(2)
    img = ours(z, None, noise_mode="const", centres=spec)
    assert torch.equal(loaded(z, None, noise_mode="const", centres=spec), img)
    # Without SEL, EqGAN-SA's (unused) heatmap encoders are dropped.
    plain_kwargs = dict(official_kwargs, use_sel=False)
    plain_state = {k: v for k, v in official_state.items() if ".sel." not in k}
    assert network_from_official(plain_kwargs, plain_state, "G").synthesis.heatmap_encoder is None
