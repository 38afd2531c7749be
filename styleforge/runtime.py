"""CPU threads: how many torch uses, how its idle threads wait, and adapting the count to a busy machine.

With two OpenMP threads on two cores and another busy process, every parallel region waits at its
barrier for the thread that shares a core with that process, and training slowed 20x on a 2-core
machine. Two settings prevent it:
- idle OpenMP threads sleep instead of spinning (`prepare_process`, before torch loads its OpenMP
  runtime, which reads the setting once);
- a `ThreadGovernor` lowers torch's thread count to the CPUs that other processes leave free, and raises
  it again when they go (Linux: from /proc/stat; elsewhere the count stays as set).

Nothing here imports torch at module level: `prepare_process` must run before torch is first imported.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

# Set for the OpenMP runtime (GNU libgomp in torch's CPU wheels) unless the user set it.
OPENMP_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}


def prepare_process() -> None:
    """Makes idle OpenMP threads sleep rather than spin: call before the first `import torch`.

    (A spinning thread holds its core between torch ops; with another process on the machine the
    two fight for it.) Settings the user gave in the environment win."""
    for key, value in OPENMP_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota (containers)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def _cgroup_cpu_quota() -> float | None:
    """CPUs' worth of time the cgroup (v2) may use, or None without a limit."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def default_threads() -> int:
    """Torch's intra-op threads when the user chose none: OMP_NUM_THREADS if set, else the available CPUs."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else available_cpus()


def _busy_jiffies(cpus: set[int]) -> int | None:
    """Busy time of these CPUs since boot in clock ticks (user, nice, system, irq, softirq, steal); None
    where /proc/stat does not exist."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    total = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
            total += user + nice + system + irq + softirq + steal
    return total


class ThreadGovernor:
    """Sets torch's intra-op threads to the CPUs other processes leave free, at most `max_threads`.

    Call `update()` between training steps; at most every `interval` seconds it measures how much CPU
    time the other processes took on this process's CPUs (all busy time minus this process's own) and
    uses a CPU only if others left more than half of it free. With `adapt=False` the count stays fixed.
    """

    def __init__(self, max_threads: int, adapt: bool = True, interval: float = 3.0):
        import torch

        self.torch = torch
        self.max_threads = max(1, max_threads)
        self.adapt = adapt
        self.interval = interval
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        torch.set_num_threads(self.max_threads)
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, int | None]:
        return time.monotonic(), time.process_time(), _busy_jiffies(self.cpus)

    def others_cpus(self, previous: tuple, current: tuple) -> float | None:
        """CPUs' worth of time that other processes used between two samples."""
        (t0, own0, busy0), (t1, own1, busy1) = previous, current
        if busy0 is None or busy1 is None or t1 <= t0:
            return None
        return max((busy1 - busy0) / self.tick - (own1 - own0), 0.0) / (t1 - t0)

    def threads_for(self, others: float) -> int:
        free = len(self.cpus) - others
        return max(1, min(self.max_threads, math.ceil(free - 0.5)))

    def update(self) -> int:
        """Adjusts and returns the thread count."""
        if self.adapt and self.max_threads > 1 and time.monotonic() - self._last[0] >= self.interval:
            current = self._sample()
            others = self.others_cpus(self._last, current)
            self._last = current
            if others is not None:
                threads = self.threads_for(others)
                if threads != self.torch.get_num_threads():
                    self.torch.set_num_threads(threads)
        return self.torch.get_num_threads()
