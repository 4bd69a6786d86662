"""How busy the machine was while a benchmark ran, not counting the benchmark itself.

The load average counts the benchmark's own threads and child processes, so a benchmark that
keeps two cores busy looks "loaded" afterwards on an idle 2-core machine. ``OtherLoad`` instead
takes the CPU time every process spent (``/proc/stat``) minus this process's and its waited-for
children's CPU time (``os.times``), over the wall time of the block: the cores that *other*
processes used meanwhile. ``reference_gflops`` times a fixed numpy workload, so runs on the
same machine at different times can be compared (its speed drifts even when idle).
``vgate_command`` starts the vgate of this interpreter's install.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any


def vgate_command() -> list[str]:
    """The ``vgate`` script beside this interpreter (a version manager's shim on PATH, such as
    pyenv's, adds its own start-up time to every run), else the one on PATH, else ``-m``."""
    beside = Path(sys.executable).parent / "vgate"
    exe = str(beside) if beside.is_file() else shutil.which("vgate")
    return [exe] if exe else [sys.executable, "-m", "vgate.cli"]


def reference_gflops(size: int = 512, repeats: int = 40) -> float:
    """Best-of-5 float32 matrix-multiply rate (GFLOP/s) of ``repeats`` ``size``-square products:
    a fixed workload whose rate says how fast the machine was when a benchmark ran."""
    import numpy as np

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9


BUSY_CORES = 0.25  # other processes using more than a quarter of a core: the figures say so
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (not idle, iowait)


def _system_cpu_seconds() -> float | None:
    """CPU seconds all processes spent since boot (None where /proc/stat is missing)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    return sum(int(fields[i]) for i in _BUSY_FIELDS) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OtherLoad:
    """``with OtherLoad() as load: ...`` (or ``load = OtherLoad().start()`` ... ``load.stop()``);
    then ``load.other_cores`` and ``load.busy``."""

    def start(self) -> OtherLoad:
        self.load_average_before = os.getloadavg()
        self._start = (time.perf_counter(), _system_cpu_seconds(), _own_cpu_seconds())
        self.other_cores: float | None = None
        return self

    def stop(self) -> None:
        wall0, system0, own0 = self._start
        wall, system = time.perf_counter() - wall0, _system_cpu_seconds()
        if system is not None and system0 is not None and wall > 0:
            others = (system - system0) - (_own_cpu_seconds() - own0)
            self.other_cores = max(0.0, others / wall)
        self.load_average_after = os.getloadavg()

    def __enter__(self) -> OtherLoad:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def busy(self) -> bool:
        """Other processes used the CPU meaningfully during the block (without /proc/stat:
        the load average before the block exceeded half the cores)."""
        if self.other_cores is None:
            return self.load_average_before[0] > 0.5 * (os.cpu_count() or 1)
        return self.other_cores > BUSY_CORES

    def record(self) -> dict[str, Any]:
        """The figures for a results file, with a note when the machine was busy."""
        out: dict[str, Any] = {
            "load_average_before": self.load_average_before,
            "load_average_after": self.load_average_after,
            "other_processes_cores": self.other_cores and round(self.other_cores, 3),
            "machine_busy": self.busy,
        }
        if self.busy:
            out["note"] = "taken while other processes used the CPU: figures understate speed"
        return out
