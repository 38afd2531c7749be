"""Performance choices a config leaves open: precision by default, and torch's CPU threads.

bfloat16 autocast runs the convolutions on the CPU's matrix units (AMX), 6-9x faster than float32 ones.
Measured on a 2-core Sapphire Rapids (CPU time per image of the training step, fp32 -> bf16): 2.5x at
res 32 with channel_base 4096 / channel_max 256, 1.5x for the demo (`--cfg cpu`), 1.16x at a quarter
of the demo's multiply-adds and 0.89x at a sixteenth, where casts cost more than the convolutions
gain. So bf16 is the default on CPUs with AMX for networks above that size; everything else trains in
float32. `--compile` stays off by default: at the demo size it trained slower than eager (165 against
206 img/s in bf16, after its compilation), and on GPUs it is not measured yet (`benchmarks/gpu_check.sh`).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from styleforge import runtime
from styleforge.errors import UserError

if TYPE_CHECKING:
    import torch

# bf16 is the default above this many multiply-adds in one G forward pass of a --batch-gpu batch (the demo
# has 1.7e9; measured gains at 4.2e8 and above, a loss at 1.0e8).
BF16_MIN_MACS = 4e8


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

    if torch.cuda.is_available() or not cpu_has_amx() or (values["g"], values["d"]) != ("stylegan2", "stylegan2"):
        return "fp32"
    macs = synthesis_macs(resolution, values["cbase"], values["cmax"], values["batch_gpu"])
    return "bf16" if macs >= BF16_MIN_MACS else "fp32"


def thread_governor(threads: int | None, device: torch.device) -> runtime.ThreadGovernor:
    """The trainer's CPU threads: `threads` if set, else the available ones, adapted to other processes'
    load while training on the CPU."""
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1 (got {threads}); leave it out to adapt to the machine")
    return runtime.ThreadGovernor(threads or runtime.default_threads(),
                                  adapt=threads is None and device.type == "cpu")
