"""Performance choices a config leaves open: precision by default, and torch's CPU threads.

bfloat16 autocast runs the convolutions on the CPU's matrix units (AMX), measured 1.7x faster at
res 32 with channel_base 4096 / channel_max 256 (`benchmarks/bench_vs_official.py`); with the demo's
narrow layers its casts cost more than the convolutions gain. So it is the default only on CPUs with
AMX and for networks whose convolutions are big enough; everything else trains in float32.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from styleforge import runtime

if TYPE_CHECKING:
    import torch

# bf16 wins above this many multiply-adds in one G forward pass of a --batch-gpu batch (measured on a
# 2-core Sapphire Rapids: fp32 wins at the demo's 1.9e9, bf16 at 2.7e10).
BF16_MIN_MACS = 8e9


def synthesis_macs(resolution: int, cbase: int, cmax: int, batch: int) -> float:
    """Multiply-adds of the 3x3 convolutions of a StyleGAN2 synthesis network for one batch."""
    channels = {res: min(cbase // res, cmax) for res in (2**i for i in range(2, int(math.log2(resolution)) + 1))}
    macs = 0
    for res, ch in channels.items():
        macs += res * res * 9 * ch * ch  # conv1
        if res > 4:
            macs += res * res * 9 * channels[res // 2] * ch  # conv0 (upsampling)
    return float(macs * batch)


@functools.cache
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX bfloat16 units (Linux reports them in /proc/cpuinfo)."""
    try:
        return "amx_bf16" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def default_precision(values: dict[str, Any], resolution: int) -> str:
    """bf16 where the benchmark shows it faster (CPU training with AMX, large enough convolutions), else fp32."""
    import torch

    if torch.cuda.is_available() or not cpu_has_amx() or values["g"] != "stylegan2":
        return "fp32"
    macs = synthesis_macs(resolution, values["cbase"], values["cmax"], values["batch_gpu"])
    return "bf16" if macs >= BF16_MIN_MACS else "fp32"


def thread_governor(threads: int | None, device: torch.device) -> runtime.ThreadGovernor:
    """The trainer's CPU threads: `threads` if set, else the available ones, adapted to other processes'
    load while training on the CPU."""
    return runtime.ThreadGovernor(threads or runtime.default_threads(),
                                  adapt=threads is None and device.type == "cpu")
