"""The code paths that only CUDA takes, run on the CPU where torch allows: float16 blocks on the top
resolutions with conv_clamp, their channels_last layout, the fused modulated convolution and NCCL.

Tolerances: float16 has an 11-bit mantissa (relative rounding 4.9e-4 per op); through the layers of a
small random network the images stay within 1% of float32's range (measured 0.18%), the logits within
0.5% (measured 0.006%), the gradients within 2% in norm (measured 0.4%).
"""

import pytest
import torch

from styleforge.networks.discriminator import StyleGAN2Discriminator
from styleforge.networks.generator import StyleGAN2Generator
from styleforge.networks.precision import Precision
from styleforge.networks.synthesis import SynthesisNetwork
from styleforge.ops.modulated_conv import modulated_conv2d
from styleforge.training import distributed

TINY = dict(channel_base=256, channel_max=16)
CUDA = torch.device("cuda")  # only its type is read: Precision.choose makes the choices CUDA would get


def cuda_precision(net, device, force_fp32=False):
    """The precision `net` gets on a CUDA device, for CPU tensors."""
    return Precision.choose(CUDA, net_dtype(net), net.reduced_dtype, force_fp32=force_fp32,
                            channels_last=net.channels_last)


def net_dtype(net):
    return next(net.parameters()).dtype


@pytest.fixture
def on_cuda_settings(monkeypatch):
    for cls in (SynthesisNetwork, StyleGAN2Discriminator):
        monkeypatch.setattr(cls, "precision", cuda_precision)


def test_cuda_precision_choices():
    p = Precision.choose(CUDA)
    assert p.reduced_dtype == torch.float16
    assert p.for_block(True) == (torch.float16, torch.channels_last)  # fp16 blocks: channels_last (tensor cores)
    assert p.for_block(False) == (torch.float32, torch.contiguous_format)
    assert Precision.choose(CUDA, force_fp32=True).for_block(True) == (torch.float32, torch.contiguous_format)


def test_fp16_top_resolutions_with_conv_clamp_agree_with_fp32(on_cuda_settings):
    torch.manual_seed(0)
    G = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
                           synthesis_kwargs=dict(num_fp16_res=2, conv_clamp=256, **TINY)).eval()
    D = StyleGAN2Discriminator(img_resolution=32, img_channels=3, num_fp16_res=2, conv_clamp=256, **TINY)
    z = torch.randn(4, 16)
    seen = []
    for layer in (G.synthesis.b32.conv1, D.b32.conv0):
        layer.register_forward_pre_hook(lambda m, args: seen.append(args[0]) and None)
    img = G(z, None, noise_mode="const")
    assert len(seen) == 1
    D(img, None)
    for x in seen:  # the top blocks ran in float16, channels_last
        assert x.dtype == torch.float16 and x.is_contiguous(memory_format=torch.channels_last)
        assert not x.is_contiguous()
    reference = G(z, None, noise_mode="const", force_fp32=True)
    assert img.dtype == torch.float32
    assert (img - reference).abs().max() < 0.01 * reference.abs().max()
    logits = D(reference, None)
    logits_fp32 = D(reference, None, force_fp32=True)
    assert logits.dtype == torch.float32
    assert (logits - logits_fp32).abs().max() < 0.005 * logits_fp32.abs().max()


def test_fp16_training_gradients_agree_with_fp32(on_cuda_settings):
    """R1's double backward and G's gradient through float16 blocks (as CUDA trains with --fp16-res)."""
    torch.manual_seed(0)
    G = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=16, mapping_kwargs=dict(num_layers=2),
                           synthesis_kwargs=dict(num_fp16_res=2, conv_clamp=256, **TINY))
    D = StyleGAN2Discriminator(img_resolution=16, num_fp16_res=2, conv_clamp=256, **TINY)
    z, reals = torch.randn(4, 16), torch.randn(4, 3, 16, 16)

    def grads(force_fp32):
        G.zero_grad(), D.zero_grad()
        torch.nn.functional.softplus(-D(G(z, None, force_fp32=force_fp32, noise_mode="const"), None,
                                        force_fp32=force_fp32)).mean().backward()
        real = reals.detach().requires_grad_(True)
        (r1,) = torch.autograd.grad(D(real, None, force_fp32=force_fp32).sum(), real, create_graph=True)
        r1.square().sum().backward()
        return torch.cat([p.grad.flatten() for p in [*G.parameters(), *D.parameters()] if p.grad is not None])

    fp16, fp32 = grads(False), grads(True)
    assert torch.isfinite(fp16).all()
    assert torch.nn.functional.cosine_similarity(fp16, fp32, dim=0) > 0.9999
    assert (fp16 - fp32).norm() < 0.02 * fp32.norm()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_fused_modulated_convolution_matches_unfused(dtype):
    """CUDA fuses modulation into one grouped convolution; in float16 both paths pre-normalise the styles."""
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 8, 8, 8), torch.randn(6, 8, 3, 3), torch.randn(3, 8) * 3
    f = torch.tensor([[1.0, 3, 3, 1]]).T @ torch.tensor([[1.0, 3, 3, 1]]) / 64
    out = {fused: modulated_conv2d(x.to(dtype), w, s, up=2, padding=1, resample_filter=f, fused_modconv=fused)
           for fused in (False, True)}
    reference = modulated_conv2d(x.double(), w.double(), s.double(), up=2, padding=1, resample_filter=f.double(),
                                 fused_modconv=False)
    tolerance = 1e-4 if dtype == torch.float32 else 5e-3 * reference.abs().max()
    for y in out.values():
        assert y.dtype == dtype and (y.double() - reference).abs().max() < tolerance


def test_nccl_is_chosen_on_cuda(monkeypatch):
    calls = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.setdefault("device", i))
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group",
                        lambda backend, **kw: calls.setdefault("backend", backend))
    env = distributed.init_from_env()
    assert calls == {"device": 1, "backend": "nccl"} and (env.rank, env.world_size, env.local_rank) == (1, 2, 1)
