"""StyleForge against NVlabs/stylegan2-ada-pytorch, side by side in one run: the StyleGAN2 speed target.

The official code is not part of StyleForge; point the script at a checkout of it (its dnnlib imports
`requests`: `pip install requests`):

    git clone https://github.com/NVlabs/stylegan2-ada-pytorch /path/to/official
    python benchmarks/bench_vs_official.py --official /path/to/official [--size small|demo] [--rounds 5]
    python benchmarks/bench_vs_official.py --official /path/to/official --size demo --compete

Sizes (both codes get the same configuration, official defaults otherwise: G `skip`, style mixing 0.9,
no augmentation, no path length):
- small: res 32, 3 channels, z = w = 512, mapping 2, channel_base 4096, channel_max 256, batch 16, D `orig`
  with minibatch-stddev group 32, R1 (gamma 10) every step in the phase `Dboth`.
- demo: res 32, 1 channel, z = w = 128, mapping 2, channel_base 1024, channel_max 64, batch 32, D `resnet`
  with group 4, lazy R1 (gamma 0.05, every 16 steps in `Dreg`).

What is timed:
- gen: G_ema(z) in eval mode with constant noise, without gradients.
- train: training iterations as each training loop runs them: its phases (Gmain, Greg every 4 steps,
  which has nothing to do without path length, Dmain + Dreg or Dboth), each with Adam, then the G_ema
  update. One sample is one cycle of the lazy-regularisation schedule (16 iterations with lazy R1), so
  samples include the regularisation in its proportion. Ours goes through `Trainer.train_step` with the
  defaults the config resolves for this size (precision, threads: printed), reading reals from a
  dataset ZIP; the official side gets ready tensors (its data loading is not timed, which favours it)
  and runs in float32.
Each round times both codes in turn, so that machine noise hits them alike; the ratios are of medians,
with the spread (min-max over rounds) beside them. Peak memory: each code builds and trains in a fresh
process of its own (`--memory-of`), which reports its peak resident set and the part training adds.

`--compete` measures how training holds up when another process wants a CPU: each round times each
code's training iterations alone, then with one busy single-threaded process running beside it (images
over `--seconds` each), and prints the loaded throughput as a fraction of the idle one.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from styleforge import runtime
from styleforge.data.build import build_dataset
from styleforge.training.loop import Trainer
from styleforge.training.report import TickStats

SIZES = {
    "small": dict(res=32, channels=3, z=512, map=2, cbase=4096, cmax=256, batch=16, d_arch="orig", mbstd=32,
                  gamma=10.0, r1_interval=0),
    "demo": dict(res=32, channels=1, z=128, map=2, cbase=1024, cmax=64, batch=32, d_arch="resnet", mbstd=4,
                 gamma=0.05, r1_interval=16),
}
LR, BETAS, PL_INTERVAL = 0.0025, (0.0, 0.99), 4


def official_modules(path: Path):
    if not (path / "training" / "networks.py").is_file():
        sys.exit(f"{path} does not look like a stylegan2-ada-pytorch checkout (no training/networks.py)")
    sys.path.insert(0, str(path))
    return importlib.import_module("training.networks"), importlib.import_module("training.loss")


def cycle_length(s: argparse.Namespace) -> int:
    """Iterations after which every phase has run in its proportion."""
    return math.lcm(PL_INTERVAL, s.r1_interval or 1) if s.r1_interval else 1


class OfficialIteration:
    """The per-iteration work of the official training_loop.py: its phases with their intervals, EMA."""

    def __init__(self, networks, loss_module, s: argparse.Namespace):
        self.G = networks.Generator(z_dim=s.z, c_dim=0, w_dim=s.z, img_resolution=s.res, img_channels=s.channels,
                                    mapping_kwargs=dict(num_layers=s.map),
                                    synthesis_kwargs=dict(channel_base=s.cbase, channel_max=s.cmax))
        self.D = networks.Discriminator(c_dim=0, img_resolution=s.res, img_channels=s.channels,
                                        architecture=s.d_arch, channel_base=s.cbase, channel_max=s.cmax,
                                        epilogue_kwargs=dict(mbstd_group_size=s.mbstd))
        self.G.train().requires_grad_(False)
        self.D.train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.loss = loss_module.StyleGAN2Loss(device=torch.device("cpu"), G_mapping=self.G.mapping,
                                              G_synthesis=self.G.synthesis, D=self.D, r1_gamma=s.gamma,
                                              pl_weight=0)
        self.phases = []
        for name, module, interval in (("G", self.G, PL_INTERVAL), ("D", self.D, s.r1_interval)):
            ratio = interval / (interval + 1) if interval else 1
            opt = torch.optim.Adam(module.parameters(), lr=LR * ratio, betas=[b**ratio for b in BETAS], eps=1e-8)
            if interval:
                self.phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
            else:
                self.phases += [(name + "both", module, opt, 1)]
        self.batch, self.z_dim, self.step = s.batch, s.z, 0
        self.reals = torch.rand(s.batch, s.channels, s.res, s.res) * 2 - 1
        self.c = torch.zeros(s.batch, 0)
        self.ema_beta = 0.5 ** (s.batch / 10_000)

    def __call__(self) -> None:
        all_gen_z = torch.randn([len(self.phases) * self.batch, self.z_dim]).split(self.batch)
        for (name, module, opt, interval), gen_z in zip(self.phases, all_gen_z):
            if self.step % interval:
                continue
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(phase=name, real_img=self.reals, real_c=self.c, gen_z=gen_z,
                                           gen_c=self.c, sync=True, gain=interval)
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
        self.step += 1


class OurIteration:
    """`Trainer.train_step` with the same configuration."""

    def __init__(self, s: argparse.Namespace, workdir: Path):
        images = workdir / "images"
        images.mkdir()
        rng = np.random.default_rng(0)
        for i in range(64):
            pixels = rng.integers(0, 256, (s.res, s.res, s.channels), dtype=np.uint8)
            PIL.Image.fromarray(pixels.squeeze(-1) if s.channels == 1 else pixels).save(images / f"{i}.png")
        build_dataset(images, workdir / "data.zip")
        options = dict(cfg="stylegan2", data=str(workdir / "data.zip"), outdir=str(workdir), workers=0,
                       batch=s.batch, z_dim=s.z, w_dim=s.z, map_layers=s.map, cbase=s.cbase, cmax=s.cmax,
                       g_arch="skip", d_arch=s.d_arch, mbstd_group=s.mbstd, gamma=s.gamma,
                       r1_interval=s.r1_interval, pl_weight=0, pl_interval=PL_INTERVAL, style_mixing=0.9,
                       aug="none", glr=LR, dlr=LR)
        options.update({k: v for k, v in (("precision", s.precision), ("threads", s.ours_threads),
                                          ("compile", s.compile)) if v})
        self.trainer = Trainer(options, quiet=True)
        self.G, self.D, self.G_ema = self.trainer.G, self.trainer.D, self.trainer.G_ema
        self.batches = self.trainer.batches()
        self.stats = TickStats()

    def __call__(self) -> None:
        self.trainer.train_step([next(self.batches) for _ in self.trainer.my_chunks], self.stats)


def generator_call(G_ema, s: argparse.Namespace):
    z, c = torch.randn(s.batch, s.z), torch.zeros(s.batch, 0)

    def generate() -> None:
        with torch.no_grad():
            G_ema(z, c, noise_mode="const")

    return generate


def training_cycle(iteration, s: argparse.Namespace):
    def cycle() -> None:
        for _ in range(cycle_length(s)):
            iteration()

    return cycle


def rate(task, images: int, seconds: float) -> float:
    """Median images/s over calls of `task` for `seconds` (at least 3 calls)."""
    samples, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < 3:
        t0 = time.perf_counter()
        task()
        samples.append(images / (time.perf_counter() - t0))
    return statistics.median(samples)


def throughput(task, images: int, seconds: float) -> float:
    """Images/s over all calls of `task` in `seconds` (at least one call)."""
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or not calls:
        task()
        calls += 1
    return calls * images / (time.perf_counter() - start)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(code: str, s: argparse.Namespace, workdir: Path):
    if code == "official":
        return OfficialIteration(*official_modules(s.official.resolve()), s)
    return OurIteration(s, workdir)


def memory_of(code: str, s: argparse.Namespace) -> None:
    """Child process: builds one code, trains two cycles and generates once; prints its memory as JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        it = build(code, s, Path(tmp))
        built = rss_mib()
        for _ in range(2):
            training_cycle(it, s)()
        generator_call(it.G_ema, s)()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(dict(peak=peak, training=peak - built)))


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def measure_memory(code: str) -> dict[str, float] | None:
    args = [a for a in sys.argv[1:] if a != "--compete"]
    result = subprocess.run([sys.executable, __file__, *args, "--memory-of", code], capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]) if result.returncode == 0 and lines else None


@contextlib.contextmanager
def busy_process():
    """One single-threaded process spinning on a CPU for the duration of the block."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.kill()
        proc.wait()


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def compare(codes: dict, s: argparse.Namespace, threads: int, setup: dict[str, float]) -> None:
    images = {"gen": s.batch, "train": s.batch * cycle_length(s)}
    tasks = {(name, "gen"): generator_call(it.G_ema, s) for name, it in codes.items()}
    tasks |= {(name, "train"): training_cycle(it, s) for name, it in codes.items()}
    for (name, _), task in tasks.items():  # warm-up: allocator, oneDNN primitive caches, compilation
        torch.set_num_threads(threads)
        start = time.perf_counter()
        task()
        setup[name] += time.perf_counter() - start
    print("setup (building, then the first call of each task; compilation happens here): "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in setup.items()))
    results: dict[tuple[str, str], list[float]] = {key: [] for key in tasks}
    print(f"{'round':>5} {'what':<6}{'official img/s':>15}{'styleforge img/s':>18}{'ratio':>8}")
    for r in range(s.rounds):
        for what in ("gen", "train"):
            for name in codes:
                torch.set_num_threads(threads)  # ours may have lowered it for a busy machine
                results[name, what].append(rate(tasks[name, what], images[what], s.seconds))
            ours, theirs = results["styleforge", what][-1], results["official", what][-1]
            print(f"{r:>5} {what:<6}{theirs:>15.2f}{ours:>18.2f}{ours / theirs:>7.2f}x", flush=True)
    print(f"{'':>5} {'what':<6}{'official median (spread)':>26}{'styleforge median (spread)':>28}{'ratio':>8}")
    for what in ("gen", "train"):
        ours, theirs = results["styleforge", what], results["official", what]
        ratio = statistics.median(ours) / statistics.median(theirs)
        print(f"{'median':>5} {what:<6}{statistics.median(theirs):>13.2f} ({spread(theirs):>10}) "
              f"{statistics.median(ours):>15.2f} ({spread(ours):>10}) {ratio:>6.2f}x")


def compete(codes: dict, s: argparse.Namespace, threads: int, setup: dict[str, float]) -> None:
    """Training iterations alone, then beside a busy process; throughput over `seconds` each (a slowed
    iteration counts in full)."""
    for it in codes.values():
        torch.set_num_threads(threads)
        it()
    results = {(name, load): [] for name in codes for load in ("idle", "loaded")}
    print(f"{'round':>5} {'code':<11}{'idle img/s':>11}{'loaded img/s':>13}{'loaded/idle':>12}  threads at the end")
    for r in range(s.rounds):
        for name, it in codes.items():
            torch.set_num_threads(threads)  # the official code keeps torch's threads; ours adapts its own
            throughput(it, s.batch, 3.0)  # untimed: ours takes back the CPUs the busy process left (2 intervals)
            results[name, "idle"].append(throughput(it, s.batch, s.seconds))
            used = [torch.get_num_threads()]
            with busy_process():
                if name == "official":
                    torch.set_num_threads(threads)
                results[name, "loaded"].append(throughput(it, s.batch, s.seconds))
                used.append(torch.get_num_threads())
            idle, loaded = results[name, "idle"][-1], results[name, "loaded"][-1]
            print(f"{r:>5} {name:<11}{idle:>11.2f}{loaded:>13.2f}{loaded / idle:>11.0%}  {used[0]} idle, "
                  f"{used[1]} loaded", flush=True)
    for name in codes:
        idle, loaded = (statistics.median(results[name, k]) for k in ("idle", "loaded"))
        print(f"median {name:<10}{idle:>11.2f}{loaded:>13.2f}{loaded / idle:>11.0%}   "
              f"(idle {spread(results[name, 'idle'])}, loaded {spread(results[name, 'loaded'])})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--official", type=Path, required=True, help="checkout of NVlabs/stylegan2-ada-pytorch")
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--res", type=int, default=None)
    parser.add_argument("--cbase", type=int, default=None)
    parser.add_argument("--cmax", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0, help="timing per code, task and round")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the official code (default: as many as this process's CPUs)")
    parser.add_argument("--ours-threads", type=int, default=None, help="--threads of ours (default: its own)")
    parser.add_argument("--precision", default=None, help="--precision of ours (default: its own for the size)")
    parser.add_argument("--compile", action="store_true", help="--compile for ours (its time counts in setup)")
    parser.add_argument("--compete", action="store_true", help="idle against one busy competing process")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--memory-of", choices=("official", "styleforge"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    s = argparse.Namespace(**{**SIZES[args.size], **vars(args)})
    for key in ("res", "cbase", "cmax", "batch"):
        setattr(s, key, getattr(args, key) or SIZES[args.size][key])
    threads = args.threads or runtime.available_cpus()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if args.memory_of:
        return memory_of(args.memory_of, s)

    skip_memory = args.no_memory or args.compete
    memory = {} if skip_memory else {code: measure_memory(code) for code in ("official", "styleforge")}
    with tempfile.TemporaryDirectory() as tmp:
        codes, setup = {}, {}
        for code in ("official", "styleforge"):
            start = time.perf_counter()
            codes[code] = build(code, s, Path(tmp))
            setup[code] = time.perf_counter() - start
        for name, it in codes.items():
            print(f"{name:>10}: G {count(it.G):,} params, D {count(it.D):,} params")
        if count(codes["official"].G) != count(codes["styleforge"].G) or \
                count(codes["official"].D) != count(codes["styleforge"].D):
            sys.exit("the two codes built different networks: not comparable")
        cfg = codes["styleforge"].trainer.cfg
        print(f"torch {torch.__version__}, {threads} threads ({os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.2f}), size {args.size}: res {s.res}, {s.channels} channels, cbase {s.cbase}, "
              f"cmax {s.cmax}, batch {s.batch}, cycle {cycle_length(s)} iterations; "
              f"styleforge: precision {cfg.precision}, compile {cfg.compile}, threads {cfg.threads or 'auto'}")
        for name, mem in memory.items():
            shown = f"peak {mem['peak']:.0f} MiB, of which training adds {mem['training']:.0f}" if mem else "failed"
            print(f"memory {name:>10}: {shown}")
        (compete if args.compete else compare)(codes, s, threads, setup)


if __name__ == "__main__":
    main()
