"""Reports and files through the CLI: several reports in one scan, never over an input, atomic
(interrupt, crash, SIGTERM, concurrent writers), a closed stdout and a full disk.

Interrupts are deterministic: the scan reads stdin from a pipe the test keeps open, so once the
first batch is in the temporary report the process is waiting for input when the signal comes.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.functional.test_cli_scan import only_error
from tests.helpers import annotations, run_vgate, validate_junit, validate_sarif, vgate_exe, write
from vgate.errors import VgateError
from vgate.reports.output import AtomicFile, atomic_write, write_text_report

RULES = ("-d", "rules")
PROMPTS = "a cat on a skateboard\na zombie in the fog\nblood on a knife\n"


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    return write(tmp_path / "p.txt", PROMPTS)


def leftovers(folder: Path) -> list[str]:
    """Temporary report files left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- several reports in one scan ---------------------------------------------------------------


def test_one_scan_writes_annotations_and_every_report(
    vgate_main, prompts: Path, tmp_path: Path
) -> None:
    sarif, junit, gitlab, jsonl = (tmp_path / n for n in ("r.sarif", "r.xml", "g.json", "r.jsonl"))
    result = vgate_main(
        "scan", *RULES, "-f", "github", str(prompts), "--report", f"sarif={sarif}",
        "--report", f"junit={junit}", "--report", f"GitLab={gitlab}", "--report", f"jsonl={jsonl}",
    )  # fmt: skip
    assert result.code == 1, result.stderr
    parsed = annotations(result.stdout)
    assert [(cmd, props["line"], props["title"]) for cmd, props, _ in parsed] == [
        ("warning", "2", "vgate/terrifying"),
        ("error", "3", "vgate/violent_bloody"),
    ]
    log = json.loads(sarif.read_text(encoding="utf-8"))
    validate_sarif(log)
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == [
        "vgate/terrifying",
        "vgate/violent_bloody",
    ]
    suite = validate_junit(junit.read_text(encoding="utf-8")).find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    issues = json.loads(gitlab.read_text(encoding="utf-8"))
    assert [i["check_name"] for i in issues] == ["vgate/terrifying", "vgate/violent_bloody"]
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["summary"]["blocked"] == 1
    assert result.stderr.startswith("vgate: scanned 3 prompts: 1 blocked, 1 warned")
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sarif", "--report takes FORMAT=PATH"),
        ("=r.json", "--report format must be one of table, json"),
        ("xml=r.xml", "--report format must be one of"),
        ("sarif=", "--report takes FORMAT=PATH"),
        ("sarif=-", "--report writes a file; use --format for the report on stdout"),
    ],
)
def test_report_option_errors(vgate_main, prompts: Path, value: str, expected: str) -> None:
    assert expected in only_error(vgate_main("scan", *RULES, str(prompts), "--report", value))


def test_report_is_refused_with_the_ray_engine(vgate_main, prompts: Path, tmp_path: Path) -> None:
    message = only_error(
        vgate_main(
            "scan",
            str(prompts),
            "--engine",
            "ray",
            "-o",
            str(tmp_path / "out"),
            "--report",
            f"sarif={tmp_path / 'r.sarif'}",
        )
    )
    assert message.startswith("--report is not available with --engine ray")


# --- never over an input -----------------------------------------------------------------------


def _same_path(prompts: Path, tmp_path: Path) -> tuple[str, ...]:
    return ("-o", str(prompts), str(prompts))


def _hard_link(prompts: Path, tmp_path: Path) -> tuple[str, ...]:
    link = tmp_path / "link.json"
    os.link(prompts, link)
    return ("-f", "json", "-o", str(link), str(prompts))


def _symlink(prompts: Path, tmp_path: Path) -> tuple[str, ...]:
    link = tmp_path / "report.json"
    link.symlink_to(prompts)
    return ("-f", "json", "-o", str(link), str(prompts))


def _extra_report(prompts: Path, tmp_path: Path) -> tuple[str, ...]:
    return (str(prompts), "--report", f"sarif={prompts}")


def _inside_directory(prompts: Path, tmp_path: Path) -> tuple[str, ...]:
    return ("-f", "jsonl", "-o", str(prompts), str(tmp_path))


def _baseline(prompts: Path, tmp_path: Path) -> tuple[str, ...]:
    baseline = write(tmp_path / "base.json", '{"tool": {"name": "vgate"}, "results": []}')
    return ("-f", "json", "--baseline", str(baseline), "-o", str(baseline), str(prompts))


@pytest.mark.parametrize(
    "arrange",
    [_same_path, _hard_link, _symlink, _extra_report, _inside_directory, _baseline],
    ids=lambda f: f.__name__.strip("_"),
)
def test_output_equal_to_an_input_is_refused_before_writing(
    vgate_main, prompts: Path, tmp_path: Path, arrange
) -> None:
    args = arrange(prompts, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    message = only_error(vgate_main("scan", *RULES, *args))
    assert "the report would overwrite an input" in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_stdin_redirected_from_the_output_file_is_refused(prompts: Path) -> None:
    with prompts.open("rb") as stdin:
        proc = subprocess.run(
            [*vgate_exe(), "scan", *RULES, "-", "-o", str(prompts)],
            stdin=stdin,
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 2
    assert proc.stderr.decode() == (
        f"vgate: error: {prompts}: the report would overwrite an input (stdin); "
        "write it somewhere else\n"
    )
    assert prompts.read_text(encoding="utf-8") == PROMPTS


def test_two_reports_to_one_file_are_refused(vgate_main, prompts: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    message = only_error(
        vgate_main("scan", *RULES, str(prompts), "-o", str(out), "--report", f"sarif={out}")
    )
    assert message == f"{out}: the same file is given for two outputs"
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("eval", "--data", "{data}", "-d", "rules", "-o", "{data}"),
        ("probe", "eval", "{folder}", "--probe", "builtin:none", "-o", "{folder}/manifest.json"),
        ("generate", "a cat", "-m", "{folder}", "--video", "{folder}/v.mp4", "-o", "{data}"),
    ],
    ids=["eval", "probe-eval", "generate"],
)
def test_other_commands_refuse_a_report_over_an_input(
    vgate_main, tmp_path: Path, args: tuple[str, ...]
) -> None:
    data = write(tmp_path / "labels.csv", "id,text,label\n1,a cat,safe\n")
    folder = tmp_path / "collection"
    write(folder / "manifest.json", "{}")
    write(folder / "v.mp4", b"old video")
    if args[0] == "generate":
        data = folder / "v.mp4"  # the report would replace the video
    argv = [a.format(data=data, folder=folder) for a in args]
    before = data.read_bytes(), (folder / "manifest.json").read_bytes()
    message = only_error(vgate_main(*argv))
    assert "the report would overwrite an input" in message or "given for two outputs" in message
    assert (data.read_bytes(), (folder / "manifest.json").read_bytes()) == before


def test_eval_writes_its_report_atomically(vgate_main, tmp_path: Path, monkeypatch) -> None:
    data = write(tmp_path / "labels.csv", "id,text,label\n1,a cat,safe\n2,blood,violent_bloody\n")
    out = write(tmp_path / "metrics.json", "previous")
    monkeypatch.setattr(os, "fsync", _full_disk)
    message = only_error_last(
        vgate_main("eval", "--data", str(data), "-d", "rules", "-o", str(out))
    )
    assert message == f"{out}: cannot write report (No space left on device)"
    assert out.read_text() == "previous" and leftovers(tmp_path) == []
    monkeypatch.undo()
    result = vgate_main("eval", "--data", str(data), "-d", "rules", "-o", str(out))
    assert result.code == 0 and json.loads(out.read_text())["n"] == 2


def only_error_last(result) -> str:
    """The ``vgate: error:`` line of a run that printed other things (tables) first."""
    assert result.code == 2, (result.code, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("vgate: error: ")]
    return line.removeprefix("vgate: error: ")


# --- atomic: crash, interrupt, concurrent writers ----------------------------------------------


def _big_input(tmp_path: Path, lines: int = 3000) -> Path:
    return write(tmp_path / "big.txt", "".join(f"blood on knife {i}\n" for i in range(lines)))


def _fail_on_second_batch(monkeypatch, error: BaseException) -> None:
    from vgate.core.gate import Gate

    judge = Gate.judge
    calls = []

    def failing(self, records):
        calls.append(len(records))
        if len(calls) == 2:
            raise error
        return judge(self, records)

    monkeypatch.setattr(Gate, "judge", failing)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "sarif", "junit", "gitlab", "github"])
def test_crash_mid_scan_keeps_the_previous_report(
    vgate_main, tmp_path: Path, monkeypatch, fmt: str
) -> None:
    small = write(tmp_path / "small.txt", PROMPTS)
    out, extra = tmp_path / "out.report", tmp_path / "extra.sarif"
    assert vgate_main("scan", *RULES, "-f", fmt, "-o", str(out), "-q", str(small)).code == 1
    previous = out.read_bytes()
    prompts = _big_input(tmp_path)
    write(extra, "previous extra")
    _fail_on_second_batch(monkeypatch, RuntimeError("detector crashed"))
    with pytest.raises(RuntimeError, match="detector crashed"):
        vgate_main(
            "scan", *RULES, "-f", fmt, "-o", str(out), str(prompts), "--report", f"sarif={extra}"
        )
    assert out.read_bytes() == previous
    assert extra.read_text() == "previous extra"
    assert leftovers(tmp_path) == []


def test_keyboard_interrupt_in_process_keeps_the_previous_report(
    vgate_main, tmp_path: Path, monkeypatch
) -> None:
    prompts = _big_input(tmp_path)
    out = write(tmp_path / "r.json", "previous")
    _fail_on_second_batch(monkeypatch, KeyboardInterrupt())
    result = vgate_main("scan", *RULES, "-f", "json", "-o", str(out), str(prompts))
    assert result.code == 130 and "Traceback" not in result.stderr
    assert out.read_text() == "previous" and leftovers(tmp_path) == []


def _start_scan(out: Path, *args: str) -> subprocess.Popen:
    """A scan of stdin into ``out`` that has written its first batch and waits for more input."""
    proc = subprocess.Popen(
        [*vgate_exe(), "scan", *RULES, "-", "-f", "jsonl", "-o", str(out), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.stdin is not None
    proc.stdin.write(b"blood on a knife\n" * 2500)  # two full batches, then it waits for EOF
    proc.stdin.flush()
    _wait_for(lambda: _temp_size(out) > 0, proc)
    return proc


def _temp_size(out: Path) -> int:
    temps = [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    return max((p.stat().st_size for p in temps), default=0)


def _wait_for(condition, proc: subprocess.Popen, limit: float = 120.0) -> None:
    """Poll ``condition`` (a state, not a time: the limit only stops a broken run)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the scan never wrote its first batch"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("sig", "code", "message"),
    [(signal.SIGINT, 130, ""), (signal.SIGTERM, 143, "vgate: terminated\n")],
)
def test_signal_mid_scan_keeps_the_previous_report(
    tmp_path: Path, sig: int, code: int, message: str
) -> None:
    out = write(tmp_path / "r.jsonl", '{"summary": "previous"}\n')
    proc = _start_scan(out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code
    assert "Traceback" not in err.decode()
    assert err.decode() == message
    assert out.read_text() == '{"summary": "previous"}\n'
    assert leftovers(tmp_path) == []


def _scanned(out: Path) -> int:
    lines = out.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])["summary"]["scanned"]


def test_two_scans_writing_one_report_never_interleave(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    slow = _start_scan(out)  # has written part of its report to its own temporary file
    quick = run_vgate("scan", *RULES, "-", "-f", "jsonl", "-o", str(out), stdin=b"a cat\n" * 3)
    assert quick.code == 0, quick.stderr
    assert _scanned(out) == 3  # the quick scan's whole report, untouched by the slow one
    assert slow.stdin is not None
    slow.stdin.close()
    assert slow.wait(timeout=120) == 1
    assert _scanned(out) == 2500  # the last rename wins, whole
    assert leftovers(tmp_path) == []


# --- closed stdout, full disk ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_closed_stdout_ends_quietly_like_unix_tools(tmp_path: Path, fmt: str) -> None:
    prompts = _big_input(tmp_path, lines=20_000)  # far more than a pipe holds
    sarif = write(tmp_path / "r.sarif", "previous")
    proc = subprocess.Popen(
        [*vgate_exe(), "scan", *RULES, "--all", "-f", fmt, str(prompts), "--report",
         f"sarif={sarif}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()  # like `| head -1`
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGPIPE  # as `yes | head -1` ends `yes`
    assert err == b""
    assert sarif.read_text() == "previous" and leftovers(tmp_path) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_full_device_is_one_line_and_other_reports_are_kept(prompts: Path, tmp_path: Path) -> None:
    sarif = tmp_path / "r.sarif"
    result = run_vgate(
        "scan", *RULES, str(prompts), "-o", "/dev/full", "--report", f"sarif={sarif}"
    )
    assert result.code == 2
    assert result.stderr.splitlines()[0] == (
        "vgate: error: /dev/full: cannot write report (No space left on device)"
    )
    assert "Traceback" not in result.stderr
    validate_sarif(json.loads(sarif.read_text(encoding="utf-8")))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_full_stdout_is_one_line(prompts: Path) -> None:
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [*vgate_exe(), "scan", *RULES, "-f", "json", str(prompts)],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines()[0] == (
        "vgate: error: <stdout>: cannot write report (No space left on device)"
    )


def _full_disk(fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_keeps_the_previous_report(
    vgate_main, prompts: Path, tmp_path: Path, monkeypatch
) -> None:
    out = write(tmp_path / "r.json", "previous")
    monkeypatch.setattr(os, "fsync", _full_disk)
    message = only_error_last(
        vgate_main("scan", *RULES, "-f", "json", "-o", str(out), str(prompts))
    )
    assert message == f"{out}: cannot write report (No space left on device)"
    assert out.read_text() == "previous" and leftovers(tmp_path) == []


# --- the atomic file itself --------------------------------------------------------------------


def test_atomic_file_replaces_the_target_of_a_symlink_and_keeps_its_mode(tmp_path: Path) -> None:
    target = write(tmp_path / "real.json", "old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_text_report(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640
    assert leftovers(tmp_path) == []


def test_atomic_file_on_an_error_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError), atomic_write(tmp_path / "r.json") as stream:
        stream.write("half")
        raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_atomic_file_writes_devices_directly(tmp_path: Path) -> None:
    file = AtomicFile(os.devnull)
    assert file.direct and file.temp is None
    file.stream.write("x")
    file.commit()
    assert Path(os.devnull).exists()


@pytest.mark.parametrize("where", ["missing/dir/r.json", "."])
def test_unwritable_report_paths_fail_before_the_scan(tmp_path: Path, where: str) -> None:
    with pytest.raises(VgateError, match="cannot write report"):
        AtomicFile(tmp_path / where)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_without_a_reader_fails_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    with pytest.raises(VgateError, match=r"out.fifo: cannot write report \(No such device"):
        AtomicFile(fifo)
