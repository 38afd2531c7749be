"""Equalized-lr layers, bias_act and the modulated convolution."""

import math

import pytest
import torch
import torch.nn.functional as F

from styleforge.ops.bias_act import ACTIVATIONS, bias_act
from styleforge.ops.layers import Conv2dLayer, FullyConnectedLayer
from styleforge.ops.modulated_conv import modulated_conv2d


def test_bias_act_formula():
    x, b = torch.randn(4, 3, 5, 5), torch.randn(3)
    expected = (F.leaky_relu(x + b[:, None, None], 0.2) * math.sqrt(2) * 0.5).clamp(-0.3, 0.3)
    assert torch.allclose(bias_act(x, b, act="lrelu", gain=math.sqrt(2) * 0.5, clamp=0.3), expected)
    assert torch.allclose(bias_act(x, b, act="lrelu"), F.leaky_relu(x + b[:, None, None], 0.2) * math.sqrt(2))
    assert torch.equal(bias_act(x), x)
    assert ACTIVATIONS["linear"].def_gain == 1 and ACTIVATIONS["relu"].def_gain == math.sqrt(2)
    with pytest.raises(ValueError, match="unknown activation"):
        bias_act(x, act="gelu2")


def test_equalized_lr_scales_weights_at_run_time():
    fc = FullyConnectedLayer(64, 8, lr_multiplier=0.01, bias_init=1)
    assert fc.weight.std().item() == pytest.approx(100, rel=0.1)  # stored as N(0, 1) / lr_multiplier
    x = torch.randn(5, 64)
    assert torch.allclose(fc(x), x @ (fc.weight * 0.01 / 8).t() + 0.01 * fc.bias, atol=1e-5)
    conv = Conv2dLayer(4, 6, 3, activation="lrelu")
    x = torch.randn(2, 4, 8, 8)
    expected = F.leaky_relu(F.conv2d(x, conv.weight / 6, padding=1), 0.2) * math.sqrt(2)
    assert torch.allclose(conv(x), expected, atol=1e-5)
    # The two steps compose to the forward pass, so methods can act between them.
    assert torch.allclose(conv.activate(conv.convolve(x), gain=0.5), conv(x, gain=0.5), atol=1e-6)


def test_frozen_conv_layer_has_no_trainable_parameters():
    conv = Conv2dLayer(2, 2, 3, trainable=False)
    assert not any(p.requires_grad for p in conv.parameters())


def test_demodulation_gives_unit_variance_outputs():
    torch.manual_seed(0)
    x = torch.randn(64, 32, 10, 10)
    weight = torch.randn(16, 32, 3, 3) * 5
    styles = torch.randn(64, 32) * 3 + 1
    y = modulated_conv2d(x, weight, styles, fused_modconv=False)  # no padding: every output sees 9*32 inputs
    assert y.var().item() == pytest.approx(1, abs=0.03)
    per_channel = y.transpose(0, 1).reshape(16, -1).var(dim=1)
    assert torch.allclose(per_channel, torch.ones(16), atol=0.1)
    # Without demodulation the output scale follows the styles and weights.
    assert modulated_conv2d(x, weight, styles, demodulate=False, fused_modconv=False).var().item() > 100


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_fused_and_unfused_paths_agree(up, demodulate):
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6, 6, dtype=torch.float64)
    weight, styles = torch.randn(5, 4, 3, 3, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    noise = torch.randn(3, 1, 6 * up, 6 * up, dtype=torch.float64)
    f = torch.ones(4, 4, dtype=torch.float64) / 16
    bias = torch.randn(5, dtype=torch.float64)
    kwargs = dict(noise=noise, bias=bias, gain=1.7, up=up, padding=1, resample_filter=f, demodulate=demodulate)
    fused = modulated_conv2d(x, weight, styles, fused_modconv=True, **kwargs)
    unfused = modulated_conv2d(x, weight, styles, fused_modconv=False, **kwargs)
    assert torch.allclose(fused, unfused, atol=1e-10)
    plain = modulated_conv2d(x, weight, styles, up=up, padding=1, resample_filter=f, demodulate=demodulate)
    assert torch.allclose(fused, (plain + noise + bias.reshape(1, 5, 1, 1)) * 1.7, atol=1e-10)


@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv_second_derivatives(fused):
    torch.manual_seed(0)
    args = [torch.randn(2, 2, 3, 3), torch.randn(2, 2, 3, 3), torch.randn(2, 2)]
    args = [a.double().requires_grad_(True) for a in args]

    def fn(x, w, s):
        return modulated_conv2d(x, w, s, padding=1, fused_modconv=fused)

    assert torch.autograd.gradgradcheck(fn, args)
