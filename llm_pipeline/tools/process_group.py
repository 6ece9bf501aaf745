"""A child command that owns a process group, so stopping it stops everything it started.

`dagster dev` starts a webserver, a daemon and a code server, and the code server starts a run
worker per run; none of them leaves the process group (Dagster starts its subprocesses with no new
session on POSIX). Starting the command as the leader of a new session therefore puts the whole tree
in one group, and `stop` ends it in stages:

1. the interrupt (SIGINT) to the leader only, so it shuts its own children down in order, as on Ctrl-C;
2. after `grace_s`, SIGTERM to the whole group;
3. after `term_s` more, SIGKILL to the whole group.

`stop` returns once the leader is reaped and no live process remains in the group, or raises
`TimeoutError` naming the survivors. A new session also keeps a terminal's Ctrl-C away from the
children: only the supervising process hears it and decides what they get.

An ignored signal stays ignored across `exec`, and Python keeps SIGINT ignored if it starts that
way: a command launched from a background job (`cmd &` in a script ignores SIGINT) would then
shrug off step 1 and cost the full grace period. The command therefore starts through a tiny Python
trampoline that restores the default disposition of SIGINT, SIGTERM and SIGHUP, unblocks them, and
`exec`s the command in place (same pid, so the leader is still the command itself).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["ProcessGroup", "group_members"]

_POLL_S = 0.1
_REAP_S = 5.0
_TRAMPOLINE = (
    "import os, signal, sys\n"
    "stops = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]\n"
    "for signum in stops:\n"
    "    signal.signal(signum, signal.SIG_DFL)\n"
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


def group_members(pgid: int) -> list[int]:
    """The pids of live (not zombie) processes in process group `pgid`.

    Reads /proc where it exists: a zombie whose parent never reaps it still answers `killpg(pgid, 0)`,
    yet it is no process left running. Elsewhere the probe is all there is.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # Fields after the parenthesised command (which may contain spaces): state ppid pgrp ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return sorted(members)


class ProcessGroup:
    """`args` running as the leader of its own session; stop it with `stop()`."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        stdout: IO[bytes] | int | None = None,
        stderr: IO[bytes] | int | None = None,
    ) -> None:
        self.args = list(args)
        self._process = subprocess.Popen(
            [sys.executable, "-c", _TRAMPOLINE, *self.args],
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        self.pid = self._process.pid

    @property
    def pgid(self) -> int:
        """The group id: the leader's pid, for as long as anything in the group lives."""
        return self.pid

    def poll(self) -> int | None:
        """The leader's exit code, or None while it runs."""
        return self._process.poll()

    def members(self) -> list[int]:
        """Live processes in the group, the leader included while it runs."""
        return group_members(self.pgid)

    def signal_leader(self, signum: int) -> None:
        """Send `signum` to the leader only (no-op once it has exited)."""
        if self._process.poll() is None:
            self._process.send_signal(signum)

    def signal_group(self, signum: int) -> None:
        """Send `signum` to every process in the group (no-op when the group is empty)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signum)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to `timeout` s for the leader and the group to end; the leader's code, or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self._process.poll()
            if code is not None and not self.members():
                return code
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(_POLL_S)

    def stop(self, grace_s: float = 30.0, term_s: float = 5.0) -> int:
        """Interrupt the leader, then SIGTERM and finally SIGKILL the group; the leader's exit code."""
        self.signal_leader(signal.SIGINT)
        code = self.wait(grace_s)
        if code is None:
            self.signal_group(signal.SIGTERM)
            code = self.wait(term_s)
        if code is None:
            self.signal_group(signal.SIGKILL)
            code = self.wait(_REAP_S)
        if code is None:
            survivors = self.members()
            raise TimeoutError(f"process group {self.pgid} ({self.args[:3]}) survived SIGKILL: {survivors}")
        return code

    def __repr__(self) -> str:
        state = "running" if self._process.poll() is None else f"exited {self._process.returncode}"
        return f"<ProcessGroup {self.pgid} {state} {' '.join(self.args[:4])}>"
