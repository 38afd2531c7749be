"""CPU threads: how many torch uses, adapted while training to what other processes leave free.

With as many OpenMP threads as cores, one other busy process makes every parallel region wait at its
barrier for the thread that shares a core with it: on a 2-core machine demo training fell from 210 to
10-40 img/s, while one thread kept 145 img/s beside the same load. Making idle OpenMP threads sleep
(OMP_WAIT_POLICY=PASSIVE) did not prevent that fall and cost 35% of G's speed on an idle machine
(measured, torch 2.13 with GNU libgomp), so the wait policy stays torch's; a `ThreadGovernor` lowers
the thread count instead, and raises it again when the other processes go.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path


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
    """Threads when the user chose none: OMP_NUM_THREADS if set, else the available CPUs."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else available_cpus()


def busy_ticks(cpus: set[int], stat: str | None = None) -> int | None:
    """Busy time of these CPUs since boot in clock ticks (user, nice, system, irq, softirq, steal), from
    /proc/stat (or its text `stat`); None where it does not exist."""
    if stat is None:
        try:
            stat = Path("/proc/stat").read_text()
        except OSError:
            return None
    total = 0
    for line in stat.splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
            total += user + nice + system + irq + softirq + steal
    return total


def threads_for(cpus: int, others: float, max_threads: int) -> int:
    """Threads for `cpus` CPUs of which other processes keep `others` CPUs' worth busy: a CPU counts only
    if at least 80% of it is free (a thread that shares its core stalls every barrier)."""
    return max(1, min(max_threads, math.floor(cpus - others + 0.2)))


class ThreadGovernor:
    """Keeps torch's intra-op threads at the CPUs that other processes leave free, at most `max_threads`.

    Call `update()` before each training step. At most every `interval` seconds it measures how much CPU
    time other processes took on this process's CPUs (all busy time minus this process's own, Linux
    /proc/stat; elsewhere the count stays fixed). It lowers the count at once (one step with too many
    threads can take many times its normal time) and raises it only after `raise_after` intervals in a row
    found the CPUs free. With `adapt=False` the count stays at `max_threads`.
    """

    def __init__(self, max_threads: int, adapt: bool = True, interval: float = 0.25, raise_after: int = 4):
        import torch

        self.torch = torch
        self.max_threads = max(1, max_threads)
        self.cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        self.adapt = adapt and self.max_threads > 1 and bool(self.cpus)
        self.interval = interval
        self.raise_after = raise_after
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._raise_votes = 0
        torch.set_num_threads(self.max_threads)
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, int | None]:
        return time.monotonic(), time.process_time(), busy_ticks(self.cpus) if self.adapt else None

    def others_cpus(self, previous: tuple, current: tuple) -> float | None:
        """CPUs' worth of time that other processes used between two samples."""
        (t0, own0, busy0), (t1, own1, busy1) = previous, current
        if busy0 is None or busy1 is None or t1 <= t0:
            return None
        return max((busy1 - busy0) / self.tick - (own1 - own0), 0.0) / (t1 - t0)

    def update(self) -> int:
        """Adjusts and returns the thread count."""
        if self.adapt and time.monotonic() - self._last[0] >= self.interval:
            current = self._sample()
            others = self.others_cpus(self._last, current)
            self._last = current
            if others is not None:
                self._set(threads_for(len(self.cpus), others, self.max_threads))
        return self.torch.get_num_threads()

    def _set(self, threads: int) -> None:
        now = self.torch.get_num_threads()
        self._raise_votes = self._raise_votes + 1 if threads > now else 0
        if threads < now or self._raise_votes >= self.raise_after:
            self.torch.set_num_threads(threads)
            self._raise_votes = 0
