"""FSMR: the feature-statistics mixing operation, where D applies it, and the penalty in D's loss."""

import pytest
import torch
import torch.nn.functional as F
from tiny import tiny_network
from torch import nn

from styleforge.losses.fsmr import FSMR, fsmr_penalty
from styleforge.losses.logistic import LogisticLoss
from styleforge.networks.fsm import FeatureMixing, channel_stats, conv_with_mixing, feature_statistics_mix
from styleforge.ops.layers import Conv2dLayer


def tiny_D(arch="resnet", res=16):
    return tiny_network("D", d_architecture=arch, img_resolution=res)


def tiny_G(res=16):
    return tiny_network("G", img_resolution=res)


# --- the operation ---------------------------------------------------------------------------------------

def test_alpha_one_returns_the_input_exactly():
    x, y = torch.randn(4, 5, 6, 6) * 3 + 1, torch.randn(4, 5, 6, 6)
    assert torch.equal(feature_statistics_mix(x, y, 1.0), x)
    assert torch.equal(FeatureMixing(torch.tensor(1.0), torch.randperm(4))(x), x)


def test_alpha_zero_has_the_reference_statistics_and_keeps_the_pattern():
    x = torch.randn(4, 5, 8, 8) * 3 + 1
    y = torch.randn(4, 5, 8, 8) * torch.rand(4, 5, 1, 1) * 4 - 2
    out = feature_statistics_mix(x, y, 0.0)
    (mean_out, var_out), (mean_y, var_y), (mean_x, var_x) = channel_stats(out), channel_stats(y), channel_stats(x)
    torch.testing.assert_close(mean_out, mean_y, rtol=0, atol=1e-5)
    # std(out) = std(x) * sqrt((var_y + eps) / (var_x + eps)): y's std up to the eps in both square roots.
    torch.testing.assert_close(var_out.sqrt(), var_y.sqrt(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close((out - mean_out) / var_out.sqrt(), (x - mean_x) / var_x.sqrt(), rtol=1e-3, atol=1e-4)


def test_mixing_is_the_linear_blend_and_uses_the_permuted_batch():
    x = torch.randn(6, 3, 5, 5)
    perm = torch.tensor([2, 0, 1, 5, 3, 4])
    fsm0 = feature_statistics_mix(x, x[perm], 0.0)
    out = FeatureMixing(torch.tensor(0.3), perm)(x)
    torch.testing.assert_close(out, 0.3 * x + 0.7 * fsm0)


def test_draw_gives_a_scalar_alpha_in_unit_interval_and_a_fresh_permutation():
    draws = [FeatureMixing.draw(16) for _ in range(5)]
    assert all(d.alpha.ndim == 0 and 0 <= d.alpha <= 1 for d in draws)
    assert all(sorted(d.perm.tolist()) == list(range(16)) for d in draws)
    assert len({tuple(d.perm.tolist()) for d in draws}) == 5


# --- where D applies it ----------------------------------------------------------------------------------

EXPECTED_PLACES = {
    # Every 3x3 conv, the residual merges, the 4x4 conv after mbstd; never fromrgb, the 1x1 skip or the dense layers.
    "resnet": ["b16.conv0", "b16.conv1", "b16.merge", "b8.conv0", "b8.conv1", "b8.merge", "b4.conv"],
    "skip": ["b16.conv0", "b16.conv1", "b8.conv0", "b8.conv1", "b4.conv"],
    "orig": ["b16.conv0", "b16.conv1", "b8.conv0", "b8.conv1", "b4.conv"],
}


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_D_mixes_after_every_3x3_conv_and_residual_merge_before_the_activation(arch, monkeypatch):
    D = tiny_D(arch)
    names = {m: n for n, m in D.named_modules()}
    events = []
    convolve, activate = Conv2dLayer.convolve, Conv2dLayer.activate

    def logged_convolve(self, x):
        events.append(("convolve", names[self]))
        return convolve(self, x)

    def logged_activate(self, x, gain=1):
        events.append(("activate", names[self]))
        return activate(self, x, gain)

    class LoggedMixing(FeatureMixing):
        def __call__(self, x):
            events.append(("fsm", None))
            return super().__call__(x)

    monkeypatch.setattr(Conv2dLayer, "convolve", logged_convolve)
    monkeypatch.setattr(Conv2dLayer, "activate", logged_activate)
    img = torch.randn(4, 3, 16, 16)
    D(img, fsm=LoggedMixing.draw(4))
    places = []
    for (kind, name), (next_kind, _) in zip(events, events[1:]):
        if next_kind == "fsm":
            # Between a layer's convolution and its bias/activation, or right after conv1's activation: the merge.
            assert kind in ("convolve", "activate"), events
            places.append(name if kind == "convolve" else name.replace("conv1", "merge"))
    assert places == EXPECTED_PLACES[arch]
    assert sum(kind == "fsm" for kind, _ in events) == len(places)


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_D_with_alpha_one_mixing_equals_plain_D_and_differs_otherwise(arch):
    D, img = tiny_D(arch), torch.randn(4, 3, 16, 16)
    plain = D(img)
    perm = torch.tensor([1, 2, 3, 0])
    # Equal up to rounding: the plain layers fold bias and gain into the convolution, mixed ones cannot.
    torch.testing.assert_close(D(img, fsm=FeatureMixing(torch.tensor(1.0), perm)), plain, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(D(img, fsm=FeatureMixing(torch.tensor(0.0), perm)), plain, atol=1e-4)


# --- the penalty -----------------------------------------------------------------------------------------

class StatisticsBlindD(nn.Module):
    """Linear conv -> FSM -> instance norm (exact, eps 0) -> dense: blind to per-channel mean and scale."""

    def __init__(self):
        super().__init__()
        self.conv = Conv2dLayer(3, 8, kernel_size=3)
        self.fc = nn.Linear(8 * 8 * 8, 1)

    def forward(self, img, c=None, fsm=None):
        x = conv_with_mixing(self.conv, img, fsm)
        return self.fc(F.instance_norm(x, eps=0).flatten(1))


def test_penalty_vanishes_when_D_ignores_channel_statistics():
    img, c = torch.randn(8, 3, 8, 8), torch.zeros(8, 0)
    blind = StatisticsBlindD()
    assert fsmr_penalty(blind, img, c, blind(img, c)).max() < 1e-8
    D = tiny_D(res=8)
    assert fsmr_penalty(D, img, c, D(img, c)).mean() > 1e-4


def test_penalty_gradient_flows_through_both_D_calls():
    D, img, c = tiny_D(), torch.randn(4, 3, 16, 16), torch.zeros(4, 0)

    def grads(detach_plain):
        D.zero_grad(set_to_none=True)
        torch.manual_seed(1)
        logits = D(img, c)
        fsmr_penalty(D, img, c, logits.detach() if detach_plain else logits).mean().backward()
        return torch.cat([p.grad.flatten() for p in D.parameters() if p.grad is not None])

    both, mixed_only = grads(False), grads(True)
    assert both.abs().sum() > 0 and not torch.allclose(both, mixed_only)


def _phase(loss, phase, G, D, seed=0):
    torch.manual_seed(seed)
    G.requires_grad_(phase.startswith("G"))
    D.requires_grad_(phase.startswith("D"))
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    real, z, c = torch.rand(4, 3, 16, 16) * 2 - 1, torch.randn(4, 8), torch.zeros(4, 0)
    return loss.accumulate_gradients(phase, real, c, z, c, gain=1.0)


def test_loss_adds_the_penalty_to_D_only_and_never_to_G():
    torch.manual_seed(0)
    G, D = tiny_G(), tiny_D()
    plain = LogisticLoss(G, D, style_mixing=0)
    fsmr = LogisticLoss(G, D, regularizers=[FSMR(0.05, fakes=True)], style_mixing=0)
    G.requires_grad_(True)  # even if G could take gradient in D's phase, it gets none
    stats = _phase(fsmr, "Dmain", G, D)
    assert set(stats) >= {"Loss/fsmr_penalty/real", "Loss/fsmr_penalty/fake"}
    assert all(p.grad is None for p in G.parameters())
    d_grads_fsmr = [p.grad.clone() for p in D.parameters()]
    _phase(plain, "Dmain", G, D)
    assert any(not torch.allclose(a, p.grad) for a, p in zip(d_grads_fsmr, D.parameters()))
    # G's step: identical with and without FSMR.
    stats = _phase(fsmr, "Gmain", G, D)
    assert not any("fsmr" in name for name in stats)
    g_grads_fsmr = [p.grad.clone() for p in G.parameters()]
    _phase(plain, "Gmain", G, D)
    assert all(torch.equal(a, p.grad) for a, p in zip(g_grads_fsmr, G.parameters()))
    # Reals only by default.
    reals_only = LogisticLoss(G, D, regularizers=[FSMR(0.05)], style_mixing=0)
    assert "Loss/fsmr_penalty/fake" not in _phase(reals_only, "Dmain", G, D)


class RecordingD(nn.Module):
    def __init__(self, D):
        super().__init__()
        self.D, self.calls = D, []

    def forward(self, img, c=None, fsm=None):
        self.calls.append((img, fsm))
        return self.D(img, c, fsm=fsm)


@pytest.mark.parametrize("aug", ["ada", "diffaug"])
def test_both_D_calls_see_the_same_augmented_reals(aug):
    import styleforge.augment  # noqa: F401  (registers the augmentations)
    from styleforge.registry import AUGMENTATIONS

    augment = AUGMENTATIONS.create(aug, **({"p": 1.0} if aug == "ada" else {}))
    G, D = tiny_G(), RecordingD(tiny_D())
    loss = LogisticLoss(G, D, augment=augment, regularizers=[FSMR(0.05)], style_mixing=0)
    _phase(loss, "Dmain", G, D)
    (fake, _), (real_plain, plain_fsm), (real_mixed, mixed_fsm) = D.calls
    assert plain_fsm is None and mixed_fsm is not None
    assert real_mixed is real_plain
