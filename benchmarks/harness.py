"""What every scenario shares: the result shape, the machine record, simulators, Redis, timing.

A scenario returns a `ScenarioResult`: its configuration, a table of rows (one per variant or
run), the targets of issue 8 with the measured value beside each, and the exact definition of
every ratio it reports, so a figure never travels without what it means.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llm_pipeline.simulator import Simulator, SimulatorConfig, SimulatorProcess
from llm_pipeline_tests.fixtures.servers import run_redis_server

__all__ = [
    "PACKAGES",
    "REPO",
    "ScenarioResult",
    "Target",
    "log",
    "machine",
    "redis_server",
    "simulator",
]

REPO = Path(__file__).resolve().parents[1]
PACKAGES = (
    "anthropic",
    "aiohttp",
    "httpx2",
    "pydantic",
    "pydantic-core",
    "tenacity",
    "redis",
    "dagster",
    "pandas",
    "pyarrow",
    "uvloop",
)
#: A spawned simulator stops by itself after this long, even if the benchmark is killed.
_SIMULATOR_LIFETIME_S = 1_800.0


@dataclass
class Target:
    """One acceptance figure of issue 8: `value op threshold`."""

    name: str
    value: float | None
    op: Literal[">=", "<=", "=="]
    threshold: float

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.op == ">=":
            return self.value >= self.threshold
        if self.op == "<=":
            return self.value <= self.threshold
        return self.value == self.threshold

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "op": self.op,
            "threshold": self.threshold,
            "met": self.met,
        }


@dataclass
class ScenarioResult:
    key: str
    title: str
    config: dict[str, Any]
    columns: list[str]
    rows: list[dict[str, Any]]
    targets: list[Target] = field(default_factory=list)
    #: Exact definitions of the ratios and figures in the table.
    definitions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "config": self.config,
            "columns": self.columns,
            "rows": self.rows,
            "targets": [t.as_dict() for t in self.targets],
            "definitions": self.definitions,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def machine() -> dict[str, Any]:
    """Cores, Python, package versions and load: a figure means little without them."""
    import psutil

    return {
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "commit": _commit(),
    }


@contextlib.contextmanager
def simulator(config: SimulatorConfig) -> Iterator[SimulatorProcess]:
    """A simulator in its own process (its CPU is not the client's), stopped afterwards."""
    with Simulator.spawn(config.replace(exit_after_s=_SIMULATOR_LIFETIME_S)) as sim:
        yield sim


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str | None]:
    """A throwaway redis-server on 127.0.0.1 (no persistence); None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with run_redis_server(binary, workdir) as url:
        yield url


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the table."""
    print(message, file=sys.stderr, flush=True)
