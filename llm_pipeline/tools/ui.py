"""`llm-pipeline ui` / `make ui`: `dagster dev` on the repository's instance, stopped without orphans.

`dagster dev` runs a webserver, a daemon and a code server (which runs a worker per run). On its own,
a Ctrl-C reaches every one of them at once, and a SIGTERM from a process manager reaches only the
top process, which can leave the others running. Here `dagster dev` leads its own process group
(`ProcessGroup`): Ctrl-C, SIGTERM or SIGHUP reach this process only, which interrupts `dagster dev`
so it shuts its services down in order, and escalates to SIGTERM and then SIGKILL on the whole group
if that takes longer than `SHUTDOWN_GRACE_S` (a second Ctrl-C escalates at once).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from llm_pipeline.settings import setting
from llm_pipeline.tools.process_group import ProcessGroup

__all__ = ["REPO_ROOT", "SHUTDOWN_GRACE_S", "dagster_home", "dev_command", "run"]

#: The repository: `workspace.yaml` and the default `.dagster_home` live here.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: How long `dagster dev` may take to stop its services after the interrupt, before SIGTERM.
SHUTDOWN_GRACE_S = 30.0
_TERM_S = 5.0
_POLL_S = 0.2
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def dagster_home() -> Path:
    """`$DAGSTER_HOME`, else the repository's `.dagster_home`; created if missing (Dagster refuses
    a DAGSTER_HOME that does not exist)."""
    home = Path(setting(None, "DAGSTER_HOME", str, str(REPO_ROOT / ".dagster_home"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def dev_command(host: str, port: int) -> list[str]:
    """The `dagster dev` command line for the repository's workspace."""
    workspace = REPO_ROOT / "workspace.yaml"
    return [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", host, "-p", str(port)]


class _Shutdown:
    """Counts the stop signals received: the first starts a graceful stop, later ones escalate.

    Installed before `dagster dev` starts, so a Ctrl-C during start-up is not lost.
    """

    def __init__(self) -> None:
        self.group: ProcessGroup | None = None
        self.requests = 0

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.requests += 1
        if self.group is not None and self.requests == 2:
            self.group.signal_group(signal.SIGTERM)
        elif self.group is not None and self.requests > 2:
            self.group.signal_group(signal.SIGKILL)


def _exit_code(code: int) -> int:
    """A shell-style exit code: a child killed by signal N reports 128 + N."""
    return 128 - code if code < 0 else code


def run(host: str = "127.0.0.1", port: int = 3000) -> int:
    """Run `dagster dev` on http://HOST:PORT until it exits or this process is asked to stop.

    Returns `dagster dev`'s exit code (0 after a clean stop on request). When it returns, no process
    of the group is left.
    """
    home = dagster_home()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={home}); Ctrl-C stops it.", file=sys.stderr)
    shutdown = _Shutdown()
    previous = {signum: signal.signal(signum, shutdown) for signum in _FORWARDED}
    try:
        group = shutdown.group = ProcessGroup(dev_command(host, port), cwd=REPO_ROOT, env=env)
        while group.poll() is None and not shutdown.requests:
            time.sleep(_POLL_S)
        if shutdown.requests:
            print(
                "Stopping the Dagster webserver, daemon and code server (a run in progress holds this "
                f"up to {SHUTDOWN_GRACE_S:.0f} s; Ctrl-C again stops everything at once)...",
                file=sys.stderr,
            )
        # Also after an unrequested exit: whatever dagster dev left behind must not outlive us.
        code = group.stop(grace_s=SHUTDOWN_GRACE_S, term_s=_TERM_S)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(f"Dagster stopped (exit code {code}).", file=sys.stderr)
    return _exit_code(code)
