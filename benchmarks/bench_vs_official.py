"""StyleForge against NVlabs/stylegan2-ada-pytorch, side by side in one run: the StyleGAN2 speed target.

The official code is not part of StyleForge; point the script at a checkout of it:

    git clone https://github.com/NVlabs/stylegan2-ada-pytorch /path/to/stylegan2-ada-pytorch
    python benchmarks/bench_vs_official.py --official /path/to/stylegan2-ada-pytorch [--cbase 32768 --cmax 512]

Both codes get the same configuration: res 32, 3 channels, z = w = 512, mapping 2 layers, G `skip`, D `orig`,
minibatch-stddev group 32, batch 16, fp32, no augmentation.
- gen: G_ema(z) in eval mode with constant noise, without gradients.
- train: one training iteration as each code's training loop runs it: G main (style mixing 0.9) with
  Adam, D main and R1 in one pass (phase `Dboth`) with Adam, G_ema update. Ours goes through
  `Trainer.train_step`, reading its reals from a dataset ZIP; the official side gets ready tensors (its
  data loading is not timed, which favours it).
Each round times both codes in turn, so that machine noise hits them alike; the ratios are of medians.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from styleforge.data.build import build_dataset
from styleforge.training.loop import Trainer
from styleforge.training.report import TickStats

ADAM = dict(lr=0.0025, betas=(0.0, 0.99), eps=1e-8)


def official_modules(path: Path):
    if not (path / "training" / "networks.py").is_file():
        sys.exit(f"{path} does not look like a stylegan2-ada-pytorch checkout (no training/networks.py)")
    sys.path.insert(0, str(path))
    return importlib.import_module("training.networks"), importlib.import_module("training.loss")


class OfficialIteration:
    """The per-iteration work of the official training_loop.py (phases Gmain and Dboth, EMA)."""

    def __init__(self, networks, loss_module, args: argparse.Namespace):
        self.G = networks.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=args.res, img_channels=3,
                                    mapping_kwargs=dict(num_layers=2),
                                    synthesis_kwargs=dict(channel_base=args.cbase, channel_max=args.cmax))
        self.D = networks.Discriminator(c_dim=0, img_resolution=args.res, img_channels=3, architecture="orig",
                                        channel_base=args.cbase, channel_max=args.cmax,
                                        epilogue_kwargs=dict(mbstd_group_size=32))
        self.G.train().requires_grad_(False)
        self.D.train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.loss = loss_module.StyleGAN2Loss(device=torch.device("cpu"), G_mapping=self.G.mapping,
                                              G_synthesis=self.G.synthesis, D=self.D, r1_gamma=args.gamma,
                                              pl_weight=0)
        self.phases = [("Gmain", self.G, torch.optim.Adam(self.G.parameters(), **ADAM)),
                       ("Dboth", self.D, torch.optim.Adam(self.D.parameters(), **ADAM))]
        self.batch = args.batch
        self.reals = torch.rand(args.batch, 3, args.res, args.res) * 2 - 1
        self.c = torch.zeros(args.batch, 0)
        self.ema_beta = 0.5 ** (args.batch / 10_000)

    def __call__(self) -> None:
        for name, module, opt in self.phases:
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(phase=name, real_img=self.reals, real_c=self.c,
                                           gen_z=torch.randn(self.batch, 512), gen_c=self.c, sync=True, gain=1)
            module.requires_grad_(False)
            for p in module.parameters():
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            opt.step()
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
                p_ema.copy_(p.lerp(p_ema, self.ema_beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                b_ema.copy_(b)


class OurIteration:
    """`Trainer.train_step` with the same configuration (R1 every step inside D main, no path length)."""

    def __init__(self, args: argparse.Namespace, workdir: Path):
        images = workdir / "images"
        images.mkdir()
        rng = np.random.default_rng(0)
        for i in range(64):
            PIL.Image.fromarray(rng.integers(0, 256, (args.res, args.res, 3), dtype=np.uint8)).save(images / f"{i}.png")
        build_dataset(images, workdir / "data.zip")
        self.trainer = Trainer(dict(
            cfg="stylegan2", data=str(workdir / "data.zip"), outdir=str(workdir), workers=0, batch=args.batch,
            z_dim=512, w_dim=512, map_layers=2, cbase=args.cbase, cmax=args.cmax, g_arch="skip", d_arch="orig",
            mbstd_group=32, gamma=args.gamma, r1_interval=0, pl_weight=0, style_mixing=0.9, aug="none",
        ), quiet=True)
        # (A `Greg` phase every 4 steps stays, as in the official loop, but has nothing to do at pl_weight 0.)
        assert [p.name for p in self.trainer.phases if p.interval == 1] == ["Gmain", "Dboth"]
        self.G, self.D, self.G_ema = self.trainer.G, self.trainer.D, self.trainer.G_ema
        self.batches = self.trainer.batches()
        self.stats = TickStats()

    def __call__(self) -> None:
        self.trainer.train_step([next(self.batches) for _ in self.trainer.my_chunks], self.stats)


def generator_call(G_ema, batch: int):
    z, c = torch.randn(batch, 512), torch.zeros(batch, 0)

    def generate() -> None:
        with torch.no_grad():
            G_ema(z, c, noise_mode="const")

    return generate


def rate(step, images: int, seconds: float) -> float:
    """Median images/s over single calls for `seconds` (at least 3 calls)."""
    samples, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < 3:
        t0 = time.perf_counter()
        step()
        samples.append(images / (time.perf_counter() - t0))
    return statistics.median(samples)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--res", type=int, default=32)
    parser.add_argument("--cbase", type=int, default=4096)
    parser.add_argument("--cmax", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--gamma", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="timing per code, task and round")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    networks, loss_module = official_modules(args.official.resolve())

    with tempfile.TemporaryDirectory() as tmp:
        codes = {"official": OfficialIteration(networks, loss_module, args),
                 "styleforge": OurIteration(args, Path(tmp))}
        for name, it in codes.items():
            print(f"{name:>10}: G {count(it.G):,} params, D {count(it.D):,} params")
        if count(codes["official"].G) != count(codes["styleforge"].G) or \
                count(codes["official"].D) != count(codes["styleforge"].D):
            sys.exit("the two codes built different networks: not comparable")
        tasks = {(name, "gen"): generator_call(it.G_ema, args.batch) for name, it in codes.items()}
        tasks |= {(name, "train"): it for name, it in codes.items()}
        for task in tasks.values():  # warm-up: allocator, oneDNN primitive caches
            task(), task()

        results: dict[tuple[str, str], list[float]] = {key: [] for key in tasks}
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, res {args.res}, cbase {args.cbase}, "
              f"cmax {args.cmax}, batch {args.batch}, fp32")
        print(f"{'round':>5} {'what':<6}{'official img/s':>15}{'styleforge img/s':>18}{'ratio':>7}")
        for r in range(args.rounds):
            for what in ("gen", "train"):
                for name in codes:
                    results[name, what].append(rate(tasks[name, what], args.batch, args.seconds))
                ours, theirs = results["styleforge", what][-1], results["official", what][-1]
                print(f"{r:>5} {what:<6}{theirs:>15.2f}{ours:>18.2f}{ours / theirs:>6.2f}x", flush=True)
        for what in ("gen", "train"):
            ours = statistics.median(results["styleforge", what])
            theirs = statistics.median(results["official", what])
            print(f"median {what:<6}{theirs:>14.2f}{ours:>18.2f}{ours / theirs:>6.2f}x")


if __name__ == "__main__":
    main()
