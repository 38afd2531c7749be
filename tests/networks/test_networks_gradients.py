"""Gradients of the regularizers that differentiate through a gradient, checked by finite differences.

R1 = |dD(x)/dx|^2 and the path length |d(G(w) . y)/dw| are functions of a first derivative; their
gradients (what the optimizer uses) need correct second derivatives of every op in D and G.
"""

import math

import pytest
import torch
from torch.func import functional_call

from styleforge.networks.discriminator import StyleGAN2Discriminator
from styleforge.networks.generator import StyleGAN2Generator
from styleforge.ops.conv import no_weight_gradients

TINY = dict(channel_base=16, channel_max=2)


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_r1_penalty_gradient(arch):
    torch.manual_seed(0)
    D = StyleGAN2Discriminator(img_resolution=8, img_channels=1, architecture=arch, **TINY,
                               epilogue_kwargs=dict(mbstd_group_size=2)).double()
    for p in D.parameters():  # non-zero biases so that every lrelu sees both slopes
        p.data += 0.1 * torch.randn_like(p)
    weight = D.b8.conv1.weight  # a D parameter, as a leaf of its own

    def r1_penalty(img, conv_weight):
        logits = functional_call(D, {"b8.conv1.weight": conv_weight}, (img, None))
        with no_weight_gradients():  # as a training loop asks for the input gradient only
            (grad,) = torch.autograd.grad(logits.sum(), img, create_graph=True)
        return grad.square().sum([1, 2, 3])

    img = torch.randn(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    weight = weight.detach().clone().requires_grad_(True)
    assert torch.autograd.grad(r1_penalty(img, weight).sum(), weight)[0].abs().max() > 1e-6  # not vacuous
    assert torch.autograd.gradcheck(r1_penalty, (img, weight), atol=1e-8)


def test_path_length_gradient():
    torch.manual_seed(0)
    G = StyleGAN2Generator(z_dim=4, w_dim=4, img_resolution=8, img_channels=1,
                           mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(**TINY)).double()
    for layer in [G.synthesis.b4.conv1, G.synthesis.b8.conv0, G.synthesis.b8.conv1]:
        layer.noise_strength.data.fill_(0.3)
    pl_noise = torch.randn(2, 1, 8, 8, dtype=torch.float64) / math.sqrt(8 * 8)

    def path_length_penalty(ws, conv_weight):
        img = functional_call(G.synthesis, {"b8.conv0.weight": conv_weight}, (ws,), dict(noise_mode="const"))
        with no_weight_gradients():
            (grad,) = torch.autograd.grad((img * pl_noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()
        return (lengths - 0.5).square()

    ws = torch.randn(2, G.num_ws, 4, dtype=torch.float64, requires_grad=True)
    weight = G.synthesis.b8.conv0.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.grad(path_length_penalty(ws, weight).sum(), weight)[0].abs().max() > 1e-6
    assert torch.autograd.gradcheck(path_length_penalty, (ws, weight), atol=1e-8)


@pytest.mark.parametrize("batch", [1, 3])
def test_path_length_without_weight_gradients_matches_the_full_gradient(batch):
    """The loss skips conv weight gradients in the inner path-length gradient; a training-mode G must then
    give the same regularizer gradient as with them (a fused modulated conv, whose weights depend on
    the styles, would lose the ws gradient through its weights)."""
    torch.manual_seed(1)
    G = StyleGAN2Generator(z_dim=4, w_dim=4, img_resolution=8, img_channels=1,
                           mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(**TINY)).double().train()
    ws = torch.randn(batch, G.num_ws, 4, dtype=torch.float64, requires_grad=True)
    pl_noise = torch.randn(batch, 1, 8, 8, dtype=torch.float64)

    def penalty_gradients(skip_weight_gradients):
        img = G.synthesis(ws, noise_mode="const")
        with no_weight_gradients(skip_weight_gradients):
            (grad,) = torch.autograd.grad((img * pl_noise).sum(), ws, create_graph=True)
        return torch.autograd.grad(grad.square().sum(), [ws, *G.synthesis.parameters()], allow_unused=True)

    for ours, full in zip(penalty_gradients(True), penalty_gradients(False), strict=True):
        assert (ours is None) == (full is None)
        if full is not None:
            torch.testing.assert_close(ours, full)
