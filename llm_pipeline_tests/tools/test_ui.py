"""`llm-pipeline ui` (what `make ui` runs): dagster dev comes up, and Ctrl-C or SIGTERM ends all of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from llm_pipeline.tools.ui import REPO_ROOT, SHUTDOWN_GRACE_S, dagster_home, dev_command
from llm_pipeline_tests.fixtures.servers import accepts_connections, free_port, tail, wait_until_serving

#: Start-up of webserver + daemon + code server on a loaded 2-core machine; generous on purpose.
_STARTUP_S = 120.0
#: dagster dev's own orderly stop plus our escalation (SIGTERM, then SIGKILL) must fit in this.
_STOP_BOUND_S = SHUTDOWN_GRACE_S + 30.0


def test_dagster_home_defaults_to_the_repository_and_exists() -> None:
    assert "DAGSTER_HOME" not in os.environ
    assert dagster_home() == (REPO_ROOT / ".dagster_home").resolve()
    assert dagster_home().is_dir()


def test_dagster_home_from_env_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "not" / "yet"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert dagster_home() == home.resolve()
    assert home.is_dir()


def test_dev_command_runs_the_repository_workspace_on_the_given_address() -> None:
    command = dev_command("127.0.0.1", 3123)
    assert command[:4] == [sys.executable, "-m", "dagster", "dev"]
    assert command[command.index("-w") + 1] == str(REPO_ROOT / "workspace.yaml")
    assert command[command.index("-h") + 1] == "127.0.0.1"
    assert command[command.index("-p") + 1] == "3123"


def _role(process: psutil.Process) -> str | None:
    try:
        cmdline = " ".join(process.cmdline())
    except psutil.Error:
        return None
    for needle, role in (
        ("dagster_webserver", "webserver"),
        ("dagster._daemon", "daemon"),
        ("api grpc", "code server"),
        ("dagster dev", "dagster dev"),
    ):
        if needle in cmdline:
            return role
    return None


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def ui_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`llm-pipeline ui` on a free port, in its own session like a shell's foreground job."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    port = free_port()
    log = tmp_path / "ui.log"
    env = {**os.environ, "DAGSTER_HOME": str(home), "LLM_PIPELINE_DATA_DIR": str(tmp_path / "data")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llm_pipeline.tools.cli", "ui", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    tree: list[psutil.Process] = []
    try:
        yield process, port, log
    finally:
        if process.poll() is None:
            tree = psutil.Process(process.pid).children(recursive=True)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        for leftover in tree:
            if _alive(leftover):
                leftover.kill()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_stopping_the_ui_leaves_no_process_behind(
    ui_process: tuple[subprocess.Popen[bytes], int, Path], how: str
) -> None:
    process, port, log = ui_process
    wait_until_serving(
        f"http://127.0.0.1:{port}/server_info",
        timeout_s=_STARTUP_S,
        exited=process.poll,
        describe=lambda: tail(log),
    )
    # The code server comes up before the webserver answers; the daemon may still be importing.
    deadline = time.monotonic() + _STARTUP_S
    while True:
        tree = psutil.Process(process.pid).children(recursive=True)
        roles = {_role(p) for p in tree}
        if {"dagster dev", "webserver", "daemon", "code server"} <= roles:
            break
        assert time.monotonic() < deadline, f"incomplete process tree {roles}\n{tail(log)}"
        time.sleep(0.5)

    if how == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)  # what the terminal does: the foreground group
    else:
        process.send_signal(signal.SIGTERM)  # what a process manager does: the top process
    code = process.wait(timeout=_STOP_BOUND_S)
    survivors = [p for p in psutil.wait_procs(tree, timeout=5)[1] if _alive(p)]
    for orphan in survivors:  # so that a failure here does not leak a Dagster into the session
        orphan.kill()

    assert [f"{p.pid} {_role(p)}" for p in survivors] == [], tail(log)
    assert code == 0, tail(log)
    assert not accepts_connections(port)
    assert "Dagster stopped (exit code 0)." in log.read_text()
