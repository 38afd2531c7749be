"""CPU threads: the available CPUs, and the governor that leaves busy CPUs to other processes."""

import subprocess
import sys
import time

import pytest
import torch

from styleforge import runtime
from styleforge.errors import UserError
from styleforge.runtime import ThreadGovernor, busy_ticks, threads_for

STAT = """cpu  900 0 90 5000 10 0 3 7 0 0
cpu0 400 0 40 2500 5 0 1 2 0 0
cpu1 500 0 50 2500 5 0 2 5 0 0
intr 12345
"""


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_busy_ticks_count_the_given_cpus_without_idle_time():
    assert busy_ticks({0}, STAT) == 400 + 40 + 1 + 2
    assert busy_ticks({0, 1}, STAT) == 443 + 500 + 50 + 2 + 5


def test_a_cpu_counts_only_when_mostly_free():
    assert threads_for(2, others=0.0, max_threads=2) == 2
    assert threads_for(2, others=0.15, max_threads=2) == 2
    assert threads_for(2, others=0.3, max_threads=2) == 1  # a thread beside it would stall every barrier
    assert threads_for(2, others=2.0, max_threads=2) == 1  # never fewer than one
    assert threads_for(8, others=1.0, max_threads=8) == 7
    assert threads_for(8, others=0.0, max_threads=4) == 4


def test_available_cpus_honour_a_cgroup_quota(monkeypatch):
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(runtime, "_cgroup_cpu_quota", lambda: 1.5)
    assert runtime.available_cpus() == 2
    monkeypatch.setattr(runtime, "_cgroup_cpu_quota", lambda: None)
    assert runtime.available_cpus() == 4


def test_default_threads_follow_omp_num_threads(monkeypatch):
    monkeypatch.setattr(runtime, "available_cpus", lambda: 4)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert runtime.default_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert runtime.default_threads() == 4


class ScriptedGovernor(ThreadGovernor):
    """Samples from a script of (others' CPUs per interval) instead of the machine."""

    def __init__(self, others):
        self.script = iter(others)
        self.clock = 0.0
        super().__init__(2, interval=1.0, raise_after=4)
        self.cpus = {0, 1}
        self.tick = 100

    def _sample(self):
        self.clock += 1.0
        busy = getattr(self, "_busy", 0)
        self._busy = busy + round(100 * next(self.script, 0.0))
        return self.clock, 0.0, self._busy


def test_governor_lowers_at_once_and_raises_after_free_intervals_in_a_row(keep_threads, monkeypatch):
    monkeypatch.setattr(runtime.time, "monotonic", lambda: float("inf"))  # every update is due
    # The first value is the baseline taken at construction; each update then sees the next interval.
    gov = ScriptedGovernor([0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert torch.get_num_threads() == 2
    assert [gov.update() for _ in range(10)] == [1, 1, 1, 1, 1, 1, 1, 1, 2, 2]


def test_fixed_thread_count_does_not_adapt(keep_threads):
    gov = ThreadGovernor(1, adapt=True)
    assert torch.get_num_threads() == 1 and not gov.adapt  # one thread has nothing to adapt
    gov = ThreadGovernor(2, adapt=False)
    gov._last = (0.0, 0.0, 0)
    assert gov.update() == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures /proc/stat")
def test_another_busy_process_is_measured(keep_threads):
    gov = ThreadGovernor(2)
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time() + 1.5\nwhile time.time() < t: pass"])
    try:
        time.sleep(0.3)
        start = gov._sample()
        time.sleep(1.0)
        assert gov.others_cpus(start, gov._sample()) > 0.6
    finally:
        busy.wait()


def test_trainer_threads_adapt_only_when_unset_and_on_the_cpu(keep_threads):
    from styleforge.training.performance import thread_governor

    assert thread_governor(None, torch.device("cpu")).adapt == (runtime.default_threads() > 1)
    fixed = thread_governor(1, torch.device("cpu"))
    assert not fixed.adapt and torch.get_num_threads() == 1
    assert not thread_governor(None, torch.device("cuda")).adapt
    with pytest.raises(UserError, match="--threads must be at least 1"):
        thread_governor(0, torch.device("cpu"))
