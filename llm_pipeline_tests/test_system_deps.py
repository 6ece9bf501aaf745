"""`make test` finds, installs (as root) or names what the suite needs from the machine, before it runs."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from llm_pipeline_tests.fixtures import system_deps
from llm_pipeline_tests.fixtures.system_deps import CHROMIUM, NPM, REDIS_SERVER, REQUIREMENTS, find, plan

SCRIPT = Path(system_deps.__file__)
#: Debian's own interpreter, readable by an unprivileged user (the project's may live under /root).
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.mark.parametrize(
    ("is_root", "has_apt", "distribution", "action", "packages"),
    [
        (True, True, "debian", "install", "redis-server chromium npm"),
        (True, True, "ubuntu", "install", "redis-server chromium-browser npm"),
        (False, True, "debian", "advise", "redis-server chromium npm"),
        (True, False, "alpine", "advise", None),
        (False, False, "unknown", "advise", None),
    ],
)
def test_the_plan_for_each_kind_of_machine(
    is_root: bool, has_apt: bool, distribution: str, action: str, packages: str | None
) -> None:
    decided = plan(REQUIREMENTS, is_root=is_root, has_apt=has_apt, distribution=distribution)
    assert decided.action == action
    if action == "install":
        assert decided.commands == (
            ("apt-get", "update"),
            ("apt-get", "install", "-y", "--no-install-recommends", *packages.split()),
        )
    elif packages:  # not root: the exact command to run, with sudo
        assert f"sudo apt-get update && sudo apt-get install -y --no-install-recommends {packages}" in (
            decided.message
        )
    else:  # no apt-get: which binaries, and the variables that point at them
        assert "no apt-get" in decided.message
        for requirement in REQUIREMENTS:
            assert f"{requirement.env}=/path/to/{requirement.name}" in decided.message


def test_nothing_missing_means_nothing_to_do() -> None:
    assert plan((), is_root=False, has_apt=False, distribution="unknown").action == "ok"


def test_an_override_variable_wins_and_a_wrong_one_is_not_replaced(tmp_path: Path) -> None:
    fake = tmp_path / "my-redis"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert find(REDIS_SERVER, {"REDIS_SERVER": str(fake), "PATH": ""}) == str(fake)
    # Set but wrong: not found, even though another redis-server may sit on PATH.
    assert find(REDIS_SERVER, {"REDIS_SERVER": str(tmp_path / "nope"), "PATH": os.environ["PATH"]}) is None


def test_this_machine_has_what_the_suite_needs() -> None:
    """`make test` ran the script before the suite: the binaries are there and are the real ones."""
    redis = find(REDIS_SERVER)
    chromium = find(CHROMIUM)
    npm = find(NPM)
    assert redis is not None
    assert chromium is not None
    assert npm is not None
    assert subprocess.run([npm, "--version"], capture_output=True, text=True).stdout.strip()[0].isdigit()
    assert "Redis server" in subprocess.run([redis, "--version"], capture_output=True, text=True).stdout
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout
    assert "Chromium" in version or "Chrome" in version


def _unprivileged() -> list[str]:
    """The command prefix that runs as an ordinary user: as root, drop to nobody with setpriv."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "util-linux's setpriv is part of every Debian/Ubuntu base system"
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_an_unprivileged_user_is_told_the_exact_command_within_seconds() -> None:
    """As a non-root user with a binary missing: exit 1 at once, printing the sudo apt-get command."""
    with tempfile.TemporaryDirectory(dir="/tmp") as shared:  # pytest's tmp_path is private to root
        folder = Path(shared)
        folder.chmod(0o755)
        script = folder / "system_deps.py"
        shutil.copy(SCRIPT, script)
        script.chmod(0o644)
        env = {"PATH": "/usr/bin:/bin", "REDIS_SERVER": str(folder / "missing-redis-server")}
        started = time.monotonic()
        result = subprocess.run(
            [*_unprivileged(), SYSTEM_PYTHON, str(script), "--install"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert time.monotonic() - started < 30  # seconds, not the minutes of a failing suite
    assert result.returncode == 1
    assert (
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server" in result.stderr
    )
    assert "REDIS_SERVER=" in result.stderr


def test_the_script_runs_on_the_standard_library_alone() -> None:
    """It runs before the virtualenv exists: `python3.11 llm_pipeline_tests/fixtures/system_deps.py`."""
    result = subprocess.run(
        [sys.executable, "-S", "-I", str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "redis-server=" in result.stdout
    assert "chromium=" in result.stdout
    assert "npm=" in result.stdout
