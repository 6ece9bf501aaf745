"""The simulator as its own OS process: for benchmarks and multi-process tests.

`SimulatorProcess.start(config)` runs `python -m llm_pipeline.simulator._child`, sends the
config as one JSON line on stdin and reads `listening on http://HOST:PORT` from stdout. The
child stops when stdin closes (`stop()`, or the parent dying), when its parent process changes
(reparenting after a crash), on SIGTERM/SIGINT, or after `exit_after_s`, so no stray server
outlives the test run that made it. `run` is shared with the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

from llm_pipeline.simulator.config import SimulatorConfig, config_from_dict, to_dict
from llm_pipeline.simulator.control import SimulatorControl
from llm_pipeline.simulator.embedded import ServerRunner

__all__ = ["LISTENING_PREFIX", "SimulatorProcess", "main", "run"]

LISTENING_PREFIX = "listening on "
_PARENT_POLL_S = 0.5


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when installed (it is, through dagster-webserver): roughly twice the request rate."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


async def _serve(config: SimulatorConfig, *, watch_parent: bool) -> None:
    runner = ServerRunner(config)
    await runner.start()
    print(f"{LISTENING_PREFIX}{runner.base_url}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = None
    if watch_parent:
        threading.Thread(target=_wait_for_eof, args=(loop, stop), daemon=True).start()
        watcher = asyncio.ensure_future(_watch_parent(os.getppid(), stop))
    try:
        await runner.serve_until(stop)
    finally:
        if watcher is not None:
            watcher.cancel()


def _wait_for_eof(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for _ in sys.stdin:
        pass
    loop.call_soon_threadsafe(stop.set)


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Stop once reparented: stdin EOF alone misses a parent whose forked children keep the pipe."""
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _PARENT_POLL_S)


def run(config: SimulatorConfig, *, watch_parent: bool = False) -> None:
    """Serve until stopped (signal, `exit_after_s`, or with `watch_parent` the parent leaving)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(config, watch_parent=watch_parent))


def main() -> None:
    config = config_from_dict(json.loads(sys.stdin.readline()))
    run(config, watch_parent=True)


class SimulatorProcess:
    """A simulator in a child process; a context manager, like `Simulator`."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url

    @property
    def control(self) -> SimulatorControl:
        return SimulatorControl(self.base_url)

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, config: SimulatorConfig, *, timeout_s: float = 30.0) -> SimulatorProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", "llm_pipeline.simulator._child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(to_dict(config)) + "\n")
        process.stdin.flush()
        try:
            line = _read_line(process, timeout_s)
        except BaseException:
            process.kill()
            process.wait()
            raise
        return cls(process, line.removeprefix(LISTENING_PREFIX).strip())

    def stop(self, timeout_s: float = 10.0) -> int:
        """Close stdin (the child's stop signal), then escalate; returns the exit code."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SimulatorProcess pid={self.pid} {self.base_url}>"


def _read_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"simulator process did not report its address within {timeout_s} s")
            if selector.select(remaining):
                line = process.stdout.readline()
                if not line:
                    raise RuntimeError(f"simulator process exited early (code {process.poll()})")
                if line.startswith(LISTENING_PREFIX):
                    return line
