"""Convolutions with fast higher-order derivatives: same values and derivatives as the built-in ones."""

import pytest
import torch
import torch.nn.functional as F

from styleforge.ops.conv import conv2d, conv_transpose2d, no_weight_gradients

CASES = [  # (transposed, stride, padding, output_padding, groups)
    (False, 1, 1, 0, 1),
    (False, 2, 0, 0, 2),
    (False, 2, 1, 0, 1),
    (True, 2, 0, 0, 1),
    (True, 2, 1, 1, 2),
]


def run(case, x, w, b):
    transposed, stride, padding, output_padding, groups = case
    if transposed:
        return conv_transpose2d(x, w, b, stride, padding, output_padding, groups)
    return conv2d(x, w, b, stride, padding, groups)


def builtin(case, x, w, b):
    transposed, stride, padding, output_padding, groups = case
    if transposed:
        return F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups)
    return F.conv2d(x, w, b, stride, padding, 1, groups)


def inputs(case):
    torch.manual_seed(0)
    transposed, _, _, _, groups = case
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    w_shape = (4, 6 // groups, 3, 3) if transposed else (6, 4 // groups, 3, 3)
    w = torch.randn(w_shape, dtype=torch.float64, requires_grad=True)
    return x, w, torch.randn(6, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("case", CASES)
def test_values_and_first_derivatives_match_builtin(case):
    x, w, b = inputs(case)
    ours, theirs = run(case, x, w, b), builtin(case, x, w, b)
    assert torch.allclose(ours, theirs)
    g = torch.randn_like(ours)
    for a, e in zip(torch.autograd.grad(ours, (x, w, b), g), torch.autograd.grad(theirs, (x, w, b), g)):
        assert torch.allclose(a, e)


@pytest.mark.parametrize("case", CASES)
def test_second_derivatives(case):
    x, w, b = inputs(case)
    assert torch.autograd.gradgradcheck(lambda x, w, b: run(case, x, w, b), (x, w, b))


def test_no_weight_gradients_skips_only_weight_gradients():
    x, w, b = inputs(CASES[0])
    with no_weight_gradients():
        gx, gw = torch.autograd.grad(conv2d(x, w, b, padding=1).sum(), (x, w), allow_unused=True)
    assert gw is None or torch.all(gw == 0)
    assert torch.allclose(gx, torch.autograd.grad(F.conv2d(x, w, b, padding=1).sum(), x)[0])
    # The penalty's gradient w.r.t. w still flows through the input gradient.
    with no_weight_gradients():
        (gx,) = torch.autograd.grad(conv2d(x, w, b, padding=1).square().sum(), x, create_graph=True)
    (gw,) = torch.autograd.grad(gx.square().sum(), w)
    (gx_ref,) = torch.autograd.grad(F.conv2d(x, w, b, padding=1).square().sum(), x, create_graph=True)
    assert torch.allclose(gw, torch.autograd.grad(gx_ref.square().sum(), w)[0])


def test_autocast():
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    w = torch.randn(6, 4, 3, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv2d(x, w, padding=1)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert x.grad.dtype == torch.float32 and w.grad.dtype == torch.float32



@pytest.mark.parametrize("transposed", [False, True])
def test_input_gradient_keeps_the_inputs_channels_last_layout(transposed):
    """A gradient arriving in NCHW (e.g. through a reshape) would send every later backward convolution to
    slower kernels; the input gradient comes back in the input's layout, with the built-in's values."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    w = torch.randn(4, 4, 3, 3, requires_grad=True)
    case = (transposed, 2, 0, 0, 1) if transposed else (False, 1, 1, 0, 1)
    y = run(case, x, w, None)
    gy = torch.randn(y.shape)  # contiguous, i.e. NCHW
    (gx,) = torch.autograd.grad(y, x, gy)
    assert gx.is_contiguous(memory_format=torch.channels_last) and not gx.is_contiguous()
    assert torch.allclose(gx, torch.autograd.grad(builtin(case, x, w, None), x, gy)[0], atol=1e-5)
