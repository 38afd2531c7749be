"""WGAN-GP and the MSG losses: penalties against discriminators whose gradients are known in closed form."""

import torch

import styleforge.losses  # noqa: F401  (registers the losses)
import styleforge.networks  # noqa: F401
from styleforge.losses.drift import Drift
from styleforge.losses.gradient_penalty import GradientPenalty
from styleforge.losses.msg import MSGRelativisticHingeLoss
from styleforge.losses.r1 import R1
from styleforge.registry import GENERATORS, LOSSES

TINY = dict(channel_base=64, channel_max=8)


class LinearD(torch.nn.Module):
    """D(img) = sum(img * W_s) over the scales: its gradient at any input is W_s, of known norm."""

    def __init__(self, resolutions):
        super().__init__()
        self.num_scales = len(resolutions)
        self.weights = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(3, r, r) * 0.1) for r in resolutions])

    def forward(self, img, c=None):
        images = img if isinstance(img, list) else [img]
        return sum((x * w).sum(dim=[1, 2, 3]) for x, w in zip(images, self.weights))[:, None]


def make_loss(name, G, D, regularizers=(), style_mixing=0.0):
    return LOSSES.get(name)(G, D, regularizers=regularizers, style_mixing=style_mixing)


def batch(G, n=4):
    return torch.rand(n, 3, G.img_resolution, G.img_resolution) * 2 - 1, torch.zeros(n, 0), torch.randn(n, G.z_dim)


def test_wgangp_penalizes_the_gradient_norm_at_mixed_images_and_the_drift_of_real_scores():
    G = GENERATORS.create("progan", z_dim=8, img_resolution=8, img_channels=3, **TINY)
    D = LinearD([8])
    loss = make_loss("wgangp", G, D, [GradientPenalty(10.0), Drift(0.001)])
    real, c, z = batch(G)
    stats = loss.accumulate_gradients("Dboth", real, c, z, c, gain=1)
    norm = D.weights[0].norm()
    torch.testing.assert_close(stats["Loss/gp_penalty"], (norm - 1).square().expand(4, 1).detach())
    real_scores = D(real).detach()
    torch.testing.assert_close(stats["Loss/drift_penalty"], real_scores.square())
    torch.testing.assert_close(stats["Loss/D/loss"], stats["Loss/scores/fake"] - real_scores)
    torch.testing.assert_close(stats["Loss/D/reg"], 10 * stats["Loss/gp_penalty"])
    assert D.weights[0].grad is not None
    g_stats = loss.accumulate_gradients("Gmain", real, c, z, c, gain=1)
    torch.testing.assert_close(g_stats["Loss/G/loss"], -g_stats["Loss/scores/fake"])


def test_msg_r1_averages_the_penalty_over_every_real_scale():
    G = GENERATORS.create("msg-stylegan2", z_dim=8, w_dim=8, img_resolution=16, img_channels=3,
                          mapping_kwargs=dict(num_layers=1), synthesis_kwargs=TINY)
    D = LinearD([4, 8, 16])
    loss = make_loss("msg", G, D, [R1(10.0)])
    real, c, z = batch(G)
    stats = loss.accumulate_gradients("Dreg", real, c, z, c, gain=1)
    expected = torch.stack([w.square().sum() for w in D.weights]).mean()
    torch.testing.assert_close(stats["Loss/r1_penalty"], expected.expand(4, 1).detach())
    stats = loss.accumulate_gradients("Gmain", real, c, z, c, gain=1)  # G's every scale reaches D
    for res in (4, 8, 16):
        assert getattr(G.synthesis, f"torgb{res}").weight.grad.abs().sum() > 0


def test_relativistic_average_hinge_formulas():
    loss = MSGRelativisticHingeLoss.__new__(MSGRelativisticHingeLoss)
    real, fake = torch.tensor([[2.0], [0.0]]), torch.tensor([[0.5], [-1.5]])  # means 1 and -0.5
    # D: relu(1 - (r - mean f)) + relu(1 + (f - mean r)): r - mean f = 2.5, 0.5; f - mean r = -0.5, -2.5.
    torch.testing.assert_close(loss.discriminator_loss(fake, real), torch.tensor([[0.0 + 0.5], [0.5 + 0.0]]))
    # G: relu(1 + (r - mean f)) + relu(1 - (f - mean r)).
    torch.testing.assert_close(loss.generator_loss(fake, real), torch.tensor([[3.5 + 1.5], [1.5 + 3.5]]))


def test_stylegan2_loss_skips_style_mixing_for_a_single_w():
    G = GENERATORS.create("progan", z_dim=8, img_resolution=8, img_channels=3, **TINY)
    loss = make_loss("stylegan2", G, LinearD([8]), style_mixing=1.0)
    fakes = loss.generate(torch.randn(2, 8), torch.zeros(2, 0))
    assert fakes.ws.shape == (2, 1, 8) and fakes.img.shape == (2, 3, 8, 8)
