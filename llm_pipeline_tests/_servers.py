"""Helpers for tests that start a server process: a free loopback port, waiting until it answers.

`run_redis_server` is the one throwaway redis-server launcher: the pytest fixture and the
benchmarks (which import it from here) all start Redis the same way.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def run_redis_server(binary: str, workdir: Path, *, start_timeout_s: float = 15.0) -> Iterator[str]:
    """`binary` on 127.0.0.1 and a free port, persisting nothing; yields its URL, stops it afterwards.

    Ready means it answers PING, not merely that the port is open. If it exits or does not answer
    within `start_timeout_s`, RuntimeError (callers turn that into their own kind of failure).
    """
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1.0)
    deadline = time.monotonic() + start_timeout_s
    try:
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server on port {port} did not start (exit code {proc.poll()})"
                    ) from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
