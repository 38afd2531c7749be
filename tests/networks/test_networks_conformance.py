"""Our StyleGAN2 G and D, loaded with official weights, reproduce the official outputs.

The data (official weights, kwargs and outputs of NVlabs/stylegan2-ada-pytorch on fixed inputs) is
described in shared/conformance/README.md.
"""

import json

import pytest
import torch
from conformance_data import require_conformance

from styleforge.errors import UserError
from styleforge.official.names import (
    convert_official_state_dict,
    network_from_official,
    official_kwargs_to_ours,
    official_name_to_ours,
)

TOL = 1e-4


DATA = require_conformance()


def load(name: str) -> dict:
    return torch.load(DATA / name, weights_only=True)


@pytest.fixture(scope="module")
def kwargs() -> dict:
    return json.loads((DATA / "kwargs.json").read_text())


@pytest.fixture(scope="module")
def G(kwargs):
    return network_from_official(kwargs["G_kwargs"], load("G_state_dict.pt"), "G").eval()


@pytest.fixture(scope="module")
def G_outputs():
    return load("G_outputs.pt")


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest difference, relative to the official tensor's largest magnitude where that is below 1: D's
    logits and R1 gradients (1e-3 .. 1e-2) would otherwise pass with errors of several percent."""
    assert a.shape == b.shape
    return ((a - b).abs().max() / b.abs().max().clamp(max=1)).item()


@pytest.mark.parametrize("psi", ["1", "0.7"])
def test_mapping_matches_official(G, G_outputs, psi):
    ws = G.mapping(G_outputs["z"], None, truncation_psi=float(psi))
    assert max_diff(ws, G_outputs[f"ws_psi{psi}"]) < TOL


@pytest.mark.parametrize("fused_modconv", [False, True])
@pytest.mark.parametrize("psi", ["1", "0.7"])
def test_generator_images_match_official(G, G_outputs, psi, fused_modconv):
    c = torch.zeros([4, 0])
    img = G.synthesis(G_outputs[f"ws_psi{psi}"], noise_mode="const", fused_modconv=fused_modconv)
    assert max_diff(img, G_outputs[f"img_psi{psi}"]) < TOL
    img = G(G_outputs["z"], c, truncation_psi=float(psi), noise_mode="const", fused_modconv=fused_modconv)
    assert max_diff(img, G_outputs[f"img_psi{psi}"]) < TOL


@pytest.mark.parametrize("arch", ["orig", "resnet"])
def test_discriminator_logits_and_r1_match_official(kwargs, G_outputs, arch):
    D = network_from_official(kwargs[f"D_{arch}_kwargs"], load(f"D_{arch}_state_dict.pt"), "D")
    out = load("D_outputs.pt")
    images = out["images"].clone().requires_grad_(True)
    logits = D(images, torch.zeros([4, 0]))
    (r1_grad,) = torch.autograd.grad(logits.sum(), images)
    assert max_diff(logits, out[f"logits_{arch}"]) < TOL
    assert max_diff(r1_grad, out[f"r1_grad_{arch}"]) < TOL
    assert max_diff(r1_grad.square().sum([1, 2, 3]), out[f"r1_penalty_{arch}"]) < TOL
    with torch.no_grad():
        assert max_diff(D(G_outputs["img_psi1"], None), out[f"logits_fake_psi1_{arch}"]) < TOL


def test_every_official_key_is_mapped_and_buffers_kept(kwargs, G):
    official = load("G_state_dict.pt")
    converted = convert_official_state_dict(official, "G")
    assert set(converted) == set(G.state_dict())
    for name in ("mapping.w_avg", "synthesis.b8.conv0.noise_const", "synthesis.b8.conv0.resample_filter"):
        assert torch.equal(G.state_dict()[name], official[name])


def test_conversion_rejects_foreign_names_and_arguments(kwargs):
    with pytest.raises(UserError, match="not a parameter or buffer of the official StyleGAN2 G"):
        official_name_to_ours("synthesis.layers.0.weight", "G")
    with pytest.raises(UserError, match="not supported: epochs"):
        official_kwargs_to_ours({**kwargs["G_kwargs"], "epochs": 0}, "G")
    layout_only = {**kwargs["D_orig_kwargs"], "block_kwargs": {"fp16_channels_last": True, "freeze_layers": 1}}
    assert official_kwargs_to_ours(layout_only, "D")["block_kwargs"] == {"freeze_layers": 1}
    assert official_kwargs_to_ours({**kwargs["G_kwargs"], "synthesis_kwargs": None}, "G")["synthesis_kwargs"] == {}
