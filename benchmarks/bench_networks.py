"""Throughput of the StyleGAN2 networks: G inference and full training steps (images/s), FLOPs per image.

    python benchmarks/bench_networks.py [--res 32 64 128] [--batch 16] [--channel-base 4096] [--channel-max 256]
        [--modes eager compile] [--layouts channels_last contiguous] [--precisions fp32 bf16]
        [--what gen train] [--seconds 3] [--threads N] [--device cpu]

- gen: G(z) in eval mode with constant noise, no gradients.
- train: one training iteration = G main step (non-saturating loss, Adam), D main step with R1 on the
  same forward pass of the reals (Adam), G_ema update.
Each cell reports the median and the best rate over timed blocks (the best is what a quiet machine
gives; the median shows the noise), plus achieved GFLOP/s from the model FLOPs per image
(torch.utils.flop_counter). The official numbers below were measured on the project's 2-core CPU
with NVlabs/stylegan2-ada-pytorch (torch 2.13, fp32, batch 16, mapping 2, D 'orig', mbstd group 32);
`bench_vs_official.py` measures both codes side by side instead, given a checkout of the official code.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from styleforge.networks.discriminator import StyleGAN2Discriminator
from styleforge.networks.generator import StyleGAN2Generator
from styleforge.ops.conv import no_weight_gradients

# (res, channel_base, channel_max) -> (G forward img/s, training iteration img/s) of the official code.
OFFICIAL = {(32, 4096, 256): (27.8, 5.7), (32, 32768, 512): (4.8, 0.77)}


def build(args: argparse.Namespace, res: int, device: torch.device):
    G = StyleGAN2Generator(z_dim=512, w_dim=512, img_resolution=res, img_channels=3,
                           mapping_kwargs=dict(num_layers=args.map),
                           synthesis_kwargs=dict(channel_base=args.channel_base, channel_max=args.channel_max))
    D = StyleGAN2Discriminator(img_resolution=res, img_channels=3, architecture=args.d_arch,
                               channel_base=args.channel_base, channel_max=args.channel_max,
                               epilogue_kwargs=dict(mbstd_group_size=args.mbstd_group))
    G_ema = StyleGAN2Generator(**G.init_kwargs).eval().requires_grad_(False)
    G_ema.load_state_dict(G.state_dict())
    return G.to(device), D.to(device), G_ema.to(device)


class TrainStep:
    """G main + D main with R1 in one pass + EMA, as a training loop does them (R1 every step)."""

    def __init__(self, G, D, G_ema, batch: int, compiled: bool, autocast, r1_gamma: float = 0.01):
        self.G, self.D, self.G_ema, self.autocast = G, D, G_ema, autocast
        # Double backward (R1) cannot go through a compiled graph: D keeps an eager twin for the reals.
        self.G_run = torch.compile(G) if compiled else G
        self.D_run = torch.compile(D) if compiled else D
        adam = dict(lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
        self.G_opt = torch.optim.Adam(G.parameters(), **adam)
        self.D_opt = torch.optim.Adam(D.parameters(), **adam)
        device = next(G.parameters()).device
        self.batch, self.device, self.r1_gamma = batch, device, r1_gamma
        self.reals = torch.rand(batch, G.img_channels, G.img_resolution, G.img_resolution, device=device) * 2 - 1
        self.c = torch.zeros(batch, 0, device=device)
        self.ema_beta = 0.5 ** (batch / 10_000)

    def __call__(self) -> None:
        G, D, c = self.G, self.D, self.c
        z = torch.randn(self.batch, G.z_dim, device=self.device)
        # G main: D frozen, gradients only for G.
        D.requires_grad_(False)
        try:
            with self.autocast():
                loss = F.softplus(-self.D_run(self.G_run(z, c, update_emas=False), c)).mean()
            self.G_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.G_opt.step()
        finally:  # a failed cell must not leave D frozen for the next one
            D.requires_grad_(True)

        # D main + R1 on the same forward pass of the reals.
        with self.autocast():
            with torch.no_grad():
                fake = self.G_run(torch.randn_like(z), c, update_emas=True)
            loss = F.softplus(self.D_run(fake, c)).mean() + real_loss_with_r1(D, self.reals, c, self.r1_gamma)
        self.D_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.D_opt.step()

        with torch.no_grad():
            ema, params = list(self.G_ema.parameters()), list(G.parameters())
            torch._foreach_lerp_(ema, params, 1 - self.ema_beta)
            for b_ema, b in zip(self.G_ema.buffers(), G.buffers()):
                b_ema.copy_(b)


def real_loss_with_r1(D, reals: torch.Tensor, c: torch.Tensor, r1_gamma: float) -> torch.Tensor:
    """D's main loss on the reals plus R1 from the same forward pass: mean softplus(-D(x)) + gamma/2 |dD/dx|^2."""
    # A non-leaf input: FlopCounterMode's hooks refuse autograd.grad w.r.t. a leaf.
    x = reals.detach().requires_grad_(True).clone()
    logits = D(x, c)
    with no_weight_gradients():  # only the input gradient is wanted here
        (r1_grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return F.softplus(-logits).mean() + r1_grad.float().square().sum([1, 2, 3]).mean() * (r1_gamma / 2)


def rates(step, images: int, seconds: float, device: torch.device, warmup: int) -> tuple[float, float]:
    """(median, best) images/s over timed single calls, after `warmup` calls."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    samples, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < 3:
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        samples.append(images / (time.perf_counter() - t0))
    return statistics.median(samples), max(samples)


def flops_per_image(step, images: int) -> float:
    try:
        with FlopCounterMode(display=False) as counter:
            step()
    except AssertionError:  # FlopCounterMode's module hooks sometimes trip over no_grad blocks
        return float("nan")
    return counter.get_total_flops() / images


def matmul_peak(dtype: torch.dtype, device: torch.device) -> float:
    """GFLOP/s of a large matmul: the practical peak to compare achieved FLOP/s against."""
    a = torch.randn(2048, 2048, device=device, dtype=dtype)
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        a @ a
        best = max(best, 2 * 2048**3 / (time.perf_counter() - t0) / 1e9)
    return best


def bf16_gradient_agreement(G, D, batch: int, device: torch.device) -> str:
    """How far bfloat16 autocast moves the gradients of a G main step and a D main + R1 step from fp32:
    what decides whether the speed of bf16 can be kept for training."""
    z = torch.randn(batch, G.z_dim, device=device)
    c = torch.zeros(batch, 0, device=device)
    reals = torch.rand(batch, G.img_channels, G.img_resolution, G.img_resolution, device=device) * 2 - 1

    def gradients(bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss_G = F.softplus(-D(G(z, c, update_emas=False, noise_mode="const"), c)).mean()
            loss_D = real_loss_with_r1(D, reals, c, r1_gamma=2.0)
        return flat_gradient(loss_G, G), flat_gradient(loss_D, D)

    def flat_gradient(loss: torch.Tensor, net: torch.nn.Module) -> torch.Tensor:
        grads = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True)
        return torch.cat([g.flatten() for g in grads if g is not None])

    parts = []
    for name, bf16, fp32 in zip(("G", "D+R1"), gradients(True), gradients(False), strict=True):
        bf16, fp32 = bf16.double(), fp32.double()
        error, cosine = float((bf16 - fp32).norm() / fp32.norm()), float(F.cosine_similarity(bf16, fp32, 0))
        parts.append(f"{name} rel. error {error:.3f} (cosine {cosine:.4f})")
    return "bf16 autocast gradients vs fp32: " + ", ".join(parts)


def bf16_available(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--res", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--channel-base", type=int, default=4096)
    parser.add_argument("--channel-max", type=int, default=256)
    parser.add_argument("--map", type=int, default=2, help="mapping layers")
    parser.add_argument("--d-arch", default="orig", choices=["orig", "skip", "resnet"])
    parser.add_argument("--mbstd-group", type=int, default=32)
    parser.add_argument("--what", nargs="+", default=["gen", "train"], choices=["gen", "train"])
    parser.add_argument("--modes", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    parser.add_argument("--layouts", nargs="+", default=["channels_last", "contiguous"],
                        choices=["channels_last", "contiguous"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per cell")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    precisions = [p for p in args.precisions if p == "fp32" or bf16_available(device)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} batch={args.batch} "
          f"channel_base={args.channel_base} channel_max={args.channel_max} map={args.map} D={args.d_arch} "
          f"mbstd={args.mbstd_group} load={load:.1f}")
    print("matmul peak GFLOP/s: " + ", ".join(
        f"{p} {matmul_peak(torch.float32 if p == 'fp32' else torch.bfloat16, device):.0f}" for p in precisions))
    print(f"{'res':>4} {'what':<6}{'mode':<8}{'layout':<14}{'prec':<5}{'img/s med':>10}{'best':>8}"
          f"{'GFLOP/img':>10}{'GFLOP/s':>9}{'vs official':>12}")

    for res in args.res:
        G, D, G_ema = build(args, res, device)
        flops = {}
        for what, mode, layout, prec in itertools.product(args.what, args.modes, args.layouts, precisions):
            for net in (G.synthesis, G_ema.synthesis, D):
                net.channels_last = layout == "channels_last"
            step = make_step(what, mode, prec, G, D, G_ema, args.batch)
            row = f"{res:>4} {what:<6}{mode:<8}{layout:<14}{prec:<5}"
            try:
                # torch.compile keeps compiling (backward graphs, recompiles) during the first few calls.
                med, best = rates(step, args.batch, args.seconds, device, warmup=6 if mode == "compile" else 2)
            except Exception as e:  # e.g. no compiler for torch.compile on this machine
                print(f"{row} failed: {type(e).__name__}: {e}")
                continue
            if not flops.get(what, float("nan")) > 0:
                flops[what] = flops_per_image(step, args.batch)
            official = OFFICIAL.get((res, args.channel_base, args.channel_max))
            comparable = official and (args.batch, args.map, args.d_arch, prec) == (16, 2, "orig", "fp32")
            ratio = f"{med / official[0 if what == 'gen' else 1]:.1f}x" if comparable else ""
            print(f"{row}{med:>10.1f}{best:>8.1f}{flops[what] / 1e9:>10.2f}{flops[what] * med / 1e9:>9.0f}{ratio:>12}",
                  flush=True)
        if "bf16" in precisions and "train" in args.what:
            print(f"{res:>4} {bf16_gradient_agreement(G, D, args.batch, device)}")


def make_step(what: str, mode: str, prec: str, G, D, G_ema, batch: int):
    device = next(G.parameters()).device

    def autocast():
        if prec == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    if what == "train":
        return TrainStep(G, D, G_ema, batch, mode == "compile", autocast)
    G_eval = torch.compile(G_ema) if mode == "compile" else G_ema
    z, c = torch.randn(batch, G.z_dim, device=device), torch.zeros(batch, 0, device=device)

    def generate():
        with torch.no_grad(), autocast():
            G_eval(z, c, noise_mode="const")

    return generate

if __name__ == "__main__":
    main()
