"""benchmarks/machine.py: the CPU other processes used, without the benchmark's own."""

from __future__ import annotations

import os

import pytest

from benchmarks import machine


def _fake(monkeypatch: pytest.MonkeyPatch, system: list[float | None], own: list[float]) -> None:
    """System CPU seconds and own CPU seconds as successive readings; wall time 10 s."""
    monkeypatch.setattr(machine, "_system_cpu_seconds", lambda: system.pop(0))
    monkeypatch.setattr(machine, "_own_cpu_seconds", lambda: own.pop(0))
    clock = [100.0, 110.0]
    monkeypatch.setattr(machine.time, "perf_counter", lambda: clock.pop(0))


def test_own_work_does_not_count_as_load(monkeypatch: pytest.MonkeyPatch) -> None:
    # the benchmark used 2 cores for 10 s and the whole machine 20.5 CPU seconds
    _fake(monkeypatch, system=[1000.0, 1020.5], own=[5.0, 25.0])
    with machine.OtherLoad() as load:
        pass
    assert load.other_cores == pytest.approx(0.05)
    assert not load.busy
    assert "note" not in load.record()


def test_other_processes_make_the_figures_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, system=[1000.0, 1030.0], own=[5.0, 15.0])  # others: 20 s in 10 s
    with machine.OtherLoad() as load:
        pass
    assert load.other_cores == pytest.approx(2.0)
    record = load.record()
    assert record["machine_busy"] and "understate" in record["note"]


def test_without_proc_stat_the_load_average_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, system=[None, None], own=[0.0, 1.0])
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 0.0, 0.0))
    with machine.OtherLoad() as load:
        pass
    assert load.other_cores is None and load.busy


def test_reference_workload_rate_follows_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # a fake clock: every timed block takes 0.5 s, so the rate is the workload's FLOPs / 0.5 s
    ticks = iter(range(100))
    monkeypatch.setattr(machine.time, "perf_counter", lambda: next(ticks) * 0.5)
    assert machine.reference_gflops(size=64, repeats=10) == pytest.approx(2 * 64**3 * 10 / 0.5e9)


def test_vgate_command_prefers_the_script_beside_the_interpreter(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    (tmp_path / "vgate").write_text("#!/bin/sh\n")
    monkeypatch.setattr(machine.sys, "executable", str(tmp_path / "python3"))
    monkeypatch.setattr(machine.shutil, "which", lambda _: "/shims/vgate")
    assert machine.vgate_command() == [str(tmp_path / "vgate")]
    (tmp_path / "vgate").unlink()
    assert machine.vgate_command() == ["/shims/vgate"]
    monkeypatch.setattr(machine.shutil, "which", lambda _: None)
    assert machine.vgate_command() == [str(tmp_path / "python3"), "-m", "vgate.cli"]
