"""Helpers for tests that start a server process: a free loopback port, waiting until it answers.

`RedisServer` is the one throwaway redis-server launcher (`run_redis_server` wraps it for a URL):
the pytest fixture, the state-failure tests (which freeze and restart it) and the benchmarks
(which import it from here) all start Redis the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(
    url: str, *, timeout_s: float, exited: Callable[[], int | None], describe: Callable[[], str] = str
) -> None:
    """Poll `url` until it answers 200; fail at once if the server process `exited()`, or at the deadline.

    `describe()` adds context (e.g. the tail of the server's log) to the failure message.
    """
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt"
    while time.monotonic() < deadline:
        code = exited()
        if code is not None:
            raise AssertionError(f"server exited with code {code} before {url} answered\n{describe()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = repr(exc)
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer within {timeout_s} s ({last_error})\n{describe()}")


class RedisServer:
    """A throwaway redis-server on 127.0.0.1 (persisting nothing) that a test can freeze and restart.

    `pause`/`resume` send SIGSTOP/SIGCONT (a frozen server: connections stay open, nothing is
    answered); `restart` stops it and starts an empty one on the same port, as a server without
    persistence comes back after a crash. `password` sets `requirepass` (and goes into `url`).
    """

    def __init__(
        self, binary: str, workdir: Path, *, password: str | None = None, start_timeout_s: float = 15.0
    ) -> None:
        self.binary, self.workdir, self.password = binary, workdir, password
        self.port = free_port()
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                   "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
                   "--loglevel", "warning"]  # fmt: skip
        if self.password:
            command += ["--requirepass", self.password]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_connect_timeout=1.0
        )
        deadline = time.monotonic() + self.start_timeout_s
        try:
            while True:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"redis-server on port {self.port} did not start (exit code {self.proc.poll()})"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.resume()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop, then start an empty server on the same port (no persistence: all data gone)."""
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def run_redis_server(binary: str, workdir: Path, *, start_timeout_s: float = 15.0) -> Iterator[str]:
    """`binary` on 127.0.0.1 and a free port, persisting nothing; yields its URL, stops it afterwards.

    Ready means it answers PING, not merely that the port is open. If it exits or does not answer
    within `start_timeout_s`, RuntimeError (callers turn that into their own kind of failure).
    """
    with RedisServer(binary, workdir, start_timeout_s=start_timeout_s) as server:
        yield server.url


def accepts_connections(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def tail(path: object, lines: int = 40) -> str:
    """The last `lines` lines of a log file, for failure messages."""
    try:
        with open(str(path), encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"
