"""ProcessGroup: the interrupt reaches the leader, stubborn trees are killed, nothing is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from llm_pipeline.tools.process_group import ProcessGroup, group_members

_PY = sys.executable

#: A leader that writes "ready" to the file named in argv[1], then "interrupted" on SIGINT, exiting 0.
_POLITE = """
import sys, time
open(sys.argv[1], "w").write("ready")
try:
    time.sleep(60)
except KeyboardInterrupt:
    open(sys.argv[1], "w").write("interrupted")
"""

#: A leader that writes "ready" to the file named in argv[1] and sleeps, signals left as it found them.
_SLEEPER = """
import sys, time
open(sys.argv[1], "w").write("ready")
time.sleep(60)
"""

#: A leader that ignores SIGINT and SIGTERM and starts a grandchild that ignores them as well.
_STUBBORN = """
import signal, subprocess, sys, time
for signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(signum, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(60)
"""


def _wait_for_file(path: Path, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {timeout_s} s")


def _sigint_disposition(pid: int) -> dict[str, bool]:
    """Whether SIGINT is blocked, ignored and caught in process `pid`, from /proc/<pid>/status."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    bit = 1 << (signal.SIGINT - 1)
    return {name: bool(int(fields[f"Sig{name}"], 16) & bit) for name in ("Blk", "Ign", "Cgt")}


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_interrupts_the_leader_which_exits_on_its_own(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    group = ProcessGroup([_PY, "-c", _POLITE, str(marker)])
    try:
        assert _wait_for_file(marker) == "ready"
        assert group.members() == [group.pid]
        assert group.stop(grace_s=20, term_s=1) == 0
        assert marker.read_text() == "interrupted"
        assert group.members() == []
    finally:
        group.signal_group(signal.SIGKILL)


def test_stop_kills_a_tree_that_ignores_interrupt_and_term(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    group = ProcessGroup([_PY, "-c", _STUBBORN, str(pid_file)])
    try:
        grandchild = int(_wait_for_file(pid_file))
        assert sorted(group.members()) == sorted([group.pid, grandchild])
        assert group.stop(grace_s=0.5, term_s=0.5) == -signal.SIGKILL
        assert _gone(grandchild)
        assert group.members() == []
    finally:
        group.signal_group(signal.SIGKILL)


def test_a_signal_ignored_by_the_supervisor_is_restored_in_the_command(tmp_path: Path) -> None:
    """A background job (`cmd &`) starts with SIGINT ignored; the command must still hear it."""
    ready = tmp_path / "ready"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        group = ProcessGroup([_PY, "-c", _SLEEPER, str(ready)])
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        _wait_for_file(ready)
        assert _sigint_disposition(group.pid) == {"Blk": False, "Ign": False, "Cgt": True}, "Python's handler"
        # An unhandled KeyboardInterrupt ends Python by SIGINT; had SIGINT stayed ignored, the
        # interpreter would have slept on until SIGTERM after the grace period.
        assert group.stop(grace_s=20, term_s=1) == -signal.SIGINT
    finally:
        group.signal_group(signal.SIGKILL)


def test_group_members_leaves_out_zombies() -> None:
    """An exited child nobody reaped still answers killpg(pgid, 0), yet nothing of it runs."""
    child = subprocess.Popen([_PY, "-c", "pass"], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.05)
        os.killpg(child.pid, 0)  # the zombie still counts for the kernel's probe
        assert group_members(child.pid) == []
    finally:
        child.wait(timeout=10)


def test_signal_group_after_the_group_is_gone_is_harmless() -> None:
    group = ProcessGroup([_PY, "-c", "pass"])
    assert group.wait(timeout=20) == 0
    group.signal_group(signal.SIGTERM)
    group.signal_leader(signal.SIGINT)
    assert group.stop(grace_s=1, term_s=1) == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_wait_times_out_while_the_group_runs(signum: int) -> None:
    group = ProcessGroup([_PY, "-c", "import time; time.sleep(60)"])
    try:
        assert group.wait(timeout=0.3) is None
        group.signal_leader(signum)
        assert group.wait(timeout=20) == -signum
    finally:
        group.signal_group(signal.SIGKILL)
