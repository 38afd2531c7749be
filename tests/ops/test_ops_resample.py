"""FIR resampling and resampling convolutions against their textbook definitions, and their derivatives."""

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from styleforge.ops import upfirdn2d as upfirdn2d_module
from styleforge.ops.conv2d_resample import conv2d_resample, transposed_conv_polyphase
from styleforge.ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upfirdn2d_taps, upsample2d


def upfirdn2d_definition(x, f, up=1, down=1, padding=(0, 0, 0, 0), flip_filter=False, gain=1):
    """Zero insertion, padding/cropping, true 2D convolution (scipy), decimation: one image at a time."""
    x0, x1, y0, y1 = padding
    f = f.double().numpy()
    f = np.outer(f, f) if f.ndim == 1 else f
    f = (f[::-1, ::-1] if flip_filter else f) * gain
    out = []
    for img in x.double().numpy().reshape(-1, *x.shape[2:]):
        u = np.zeros((img.shape[0] * up, img.shape[1] * up))
        u[::up, ::up] = img
        u = np.pad(u, ((max(y0, 0), max(y1, 0)), (max(x0, 0), max(x1, 0))))
        u = u[max(-y0, 0) : u.shape[0] - max(-y1, 0), max(-x0, 0) : u.shape[1] - max(-x1, 0)]
        out.append(scipy.signal.convolve2d(u, f, mode="valid")[::down, ::down])
    return torch.from_numpy(np.stack(out)).reshape(*x.shape[:2], *out[0].shape)


FILTERS = {
    "binomial4": setup_filter([1, 3, 3, 1]),
    "asym3x2": torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.25]]),
    "separable8": setup_filter([1, 2, 3, 4, 4, 3, 2, 1]),
}


@pytest.mark.parametrize("filt", FILTERS)
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1)])
@pytest.mark.parametrize("padding", [(0, 0, 0, 0), (2, 1, 2, 1), (1, 2, 3, 0), (-1, 2, 0, -1)])
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d_matches_definition(filt, up, down, padding, flip_filter):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 11, 10, dtype=torch.float64)
    f = FILTERS[filt]
    ours = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=1.5)
    expected = upfirdn2d_definition(x, f, up, down, padding, flip_filter, gain=1.5)
    assert ours.shape == expected.shape
    assert torch.allclose(ours, expected, atol=1e-10)


def test_channels_last_gives_the_same_result():
    x = torch.randn(2, 5, 8, 8)
    f = FILTERS["binomial4"]
    for op in (upsample2d, downsample2d, filter2d):
        assert torch.allclose(op(x, f), op(x.contiguous(memory_format=torch.channels_last), f), atol=1e-6)


def test_resampling_sizes_and_dc_gain():
    x = torch.ones(1, 2, 8, 8)
    f = FILTERS["binomial4"]
    up, down = upsample2d(x, f), downsample2d(x, f)
    assert up.shape[-2:] == (16, 16) and down.shape[-2:] == (4, 4) and filter2d(x, f).shape == x.shape
    # A constant image stays constant away from the (zero-padded) borders.
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.ones(1)) and torch.allclose(down[..., 1:-1, 1:-1], torch.ones(1))


@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_resample_matches_definition(kernel, up, down, groups):
    """Pad once, FIR-upsample, convolve (true convolution when upsampling, as the official layers), FIR-downsample."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, kernel, kernel, dtype=torch.float64)
    f = FILTERS["binomial4"]
    p = kernel // 2
    ours = conv2d_resample(x, w, f, up=up, down=down, padding=p, groups=groups)
    if up > 1:
        pad = [p + 2, p + 1, p + 2, p + 1]
        expected = F.conv2d(upfirdn2d_definition(x, f, up=2, padding=pad, gain=4), w.flip([2, 3]), groups=groups)
    elif down > 1:
        y = F.conv2d(F.pad(x, [p + 1] * 4), w, groups=groups)
        expected = upfirdn2d_definition(y, f, down=2)
    else:
        expected = F.conv2d(x, w, padding=p, groups=groups)
    assert ours.shape == expected.shape == (2, 6, 8 * up // down, 8 * up // down)
    assert torch.allclose(ours, expected, atol=1e-10)


@pytest.mark.parametrize("up,down", [(2, 1), (1, 2)])
def test_first_and_second_derivatives(up, down):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    f = FILTERS["binomial4"].double()

    def fn(x, w):
        return conv2d_resample(x, w, f, up=up, down=down, padding=1)

    assert torch.autograd.gradcheck(fn, (x, w))
    assert torch.autograd.gradgradcheck(fn, (x, w))
    assert torch.autograd.gradgradcheck(lambda x: upsample2d(x, f) if up > 1 else downsample2d(x, f), (x,))


@pytest.mark.parametrize("filt", ["asym3x2", "separable8"])
@pytest.mark.parametrize("up,down,padding", [(2, 1, (3, 1, 2, 4)), (1, 2, (2, -1, 0, 3)), (3, 2, (1, 2, 1, 2))])
def test_upfirdn2d_derivatives_of_any_order(filt, up, down, padding):
    """The backward is an upfirdn2d itself: check first and second derivatives against finite differences."""
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64, requires_grad=True)
    f = FILTERS[filt].double()

    def fn(x):
        return upfirdn2d(x, f, up=up, down=down, padding=padding, gain=2.0)

    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("kernel,up,groups", [(3, 2, 1), (3, 2, 2), (4, 2, 1), (1, 2, 1), (3, 3, 1), (5, 2, 2)])
def test_polyphase_transposed_convolution(kernel, up, groups):
    """The regular-convolution form (used for bfloat16 on CPUs) is the transposed convolution plus zeros."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, kernel, kernel, dtype=torch.float64)  # as conv2d_resample applies it
    w_t = w.reshape(groups, 6 // groups, 4 // groups, kernel, kernel).transpose(1, 2).reshape(4, 6 // groups, kernel,
                                                                                           kernel)
    expected = F.conv_transpose2d(x, w_t, stride=up, groups=groups)
    ours, extra_h, extra_w = transposed_conv_polyphase(x, w, up, groups)
    H, W = expected.shape[2:]
    assert ours.shape[2:] == (H + extra_h, W + extra_w)
    assert torch.allclose(ours[:, :, :H, :W], expected, atol=1e-10) and torch.all(ours[:, :, H:] == 0)


def test_conv2d_resample_in_bfloat16_autocast():
    torch.manual_seed(0)
    x, w = torch.randn(2, 8, 8, 8), torch.randn(8, 8, 3, 3) / 8
    f = FILTERS["binomial4"]
    expected = conv2d_resample(x, w, f, up=2, padding=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = conv2d_resample(x, w, f, up=2, padding=1)
    assert ours.dtype == torch.bfloat16 and ours.shape == expected.shape
    assert (ours.float() - expected).abs().max() < 0.02 * expected.abs().max()


def test_upfirdn2d_gradient_keeps_the_inputs_channels_last_layout():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    y = upfirdn2d(x, FILTERS["binomial4"], down=2, padding=1)
    (gx,) = torch.autograd.grad(y, x, torch.randn(y.shape))  # an NCHW gradient
    assert gx.is_contiguous(memory_format=torch.channels_last) and not gx.is_contiguous()


def test_polyphase_output_is_channels_last():
    """The phases are interleaved in channels_last memory, so the layers after it stay in that (fast) layout."""
    x = torch.randn(2, 4, 5, 5).contiguous(memory_format=torch.channels_last)
    out, _, _ = transposed_conv_polyphase(x, torch.randn(6, 4, 3, 3), up=2)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()


def test_bfloat16_upsampling_filters_in_float32_on_cpu():
    """CPUs lack a fast bfloat16 depthwise transposed convolution: the upsampling filter runs in float32
    (under autocast too) and returns bfloat16."""
    x = torch.randn(2, 4, 8, 8).bfloat16().contiguous(memory_format=torch.channels_last)
    seen = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.convolution.default and args[6]:  # transposed
                seen.append(args[0].dtype)
            return func(*args, **(kwargs or {}))

    with Record(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = upsample2d(x, FILTERS["binomial4"])
    assert seen and set(seen) == {torch.float32}
    assert y.dtype == torch.bfloat16
    assert torch.allclose(y.float(), upsample2d(x.float(), FILTERS["binomial4"]), atol=0.02)


@pytest.mark.parametrize("filt", FILTERS)
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1)])
@pytest.mark.parametrize("padding", [(0, 0, 0, 0), (2, 1, 2, 1), (-1, 2, 0, -1)])
@pytest.mark.parametrize("flip_filter", [False, True])
def test_taps_form_matches_upfirdn2d(filt, up, down, padding, flip_filter):
    """The form torch.compile sees on GPUs (shifted slices and multiply-adds) computes the same."""
    x = torch.randn(2, 3, 12, 13, dtype=torch.float64)
    f = FILTERS[filt].double()
    expected = upfirdn2d(x, f, up, down, padding, flip_filter, gain=2.0)
    assert torch.allclose(upfirdn2d_taps(x, f, up, down, padding, flip_filter, gain=2.0), expected, atol=1e-12)


@pytest.mark.slow
def test_compiled_layer_fuses_filter_bias_activation_gain_and_clamp(monkeypatch):
    """With the taps form, a compiled upsampling layer runs one convolution (the transposed one) and fuses
    FIR filter, demodulation, noise, bias, activation, gain and clamp into one kernel after it; with the
    depthwise-convolution form the filter is a second convolution. (On the CPU, measured, the depthwise form
    is faster, so the taps form is what CUDA gets; the fusion is the same.)"""
    from torch._inductor.utils import run_and_get_code

    from styleforge.networks.synthesis import SynthesisLayer

    layer = SynthesisLayer(8, 8, w_dim=4, resolution=16, up=2, conv_clamp=256).eval()
    x, w = torch.randn(2, 8, 8, 8), torch.randn(2, 4)
    monkeypatch.setattr(upfirdn2d_module, "TAPS_WHEN_COMPILING", {"cpu"})
    torch._dynamo.reset()
    with torch.no_grad():
        y, code = run_and_get_code(torch.compile(lambda x, w: layer(x, w, noise_mode="const")), x, w)
        expected = layer(x, w, noise_mode="const")
    code = "\n".join(code)
    assert code.count("extern_kernels.convolution(") == 1
    epilogue = [line for line in code.splitlines() if "cpp_fused_" in line and "leaky_relu" in line]
    assert epilogue and all(op in epilogue[0] for op in ("constant_pad_nd", "clamp", "leaky_relu", "rsqrt"))
    assert torch.allclose(y, expected, atol=1e-5)
