"""The Dagster web stack as users run it, started once for the e2e package and stopped after it.

- `e2e_instance`: a temporary DAGSTER_HOME with a small dagster.yaml of our own, and a temporary
  LLM_PIPELINE_DATA_DIR holding the sample days trimmed to `DOCS_PER_DAY` documents.
- `webserver`: `dagster-webserver -w workspace.yaml` on a free 127.0.0.1 port, its GraphQL client.
- `daemon`: `dagster-daemon run -w workspace.yaml` (backfills, run queue, schedules).
- `completed_backfill`: the sample days backfilled through GraphQL as the UI's button does.

Each server leads its own process group (`ProcessGroup`), so teardown stops it together with its
code server and any run worker. No API key is set: every run uses the embedded simulator.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from llm_pipeline.tools.process_group import ProcessGroup
from llm_pipeline.tools.ui import REPO_ROOT
from llm_pipeline_tests.e2e.graphql import (
    BACKFILL_STATUS,
    LAUNCH_BACKFILL,
    GraphQL,
    backfill_params,
    expect_type,
)
from llm_pipeline_tests.fixtures.servers import free_port, tail, wait_until_serving

#: The four assets of the chain, upstream first.
ASSETS = ["raw_documents", "extracted_entities", "classifications", "corpus_report"]
#: The sample days the backfill materializes.
PARTITIONS = ["2026-11-20", "2026-11-21", "2026-11-22"]
#: Documents kept per day in the temporary copy: enough for every path, few enough to be quick.
DOCS_PER_DAY = 60
#: Artifacts (screenshots, server logs) of the last e2e session; gitignored.
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

_BIN = Path(sys.executable).parent
_STARTUP_S = 120.0
#: The backfill daemon looks for work every 30 s; three small days then take well under a minute.
_BACKFILL_S = 300.0
_TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
_PROJECT_ENV_PREFIXES = ("ANTHROPIC_", "LLM_PIPELINE_", "DAGSTER_")

#: Only what the tests need on top of Dagster's defaults: no telemetry or first-run tour (the
#: browser test must see the UI, not a dialog); a run queue the daemon drains every second; two runs
#: at a time on two cores; and a limit for the API pool, as the real instance settings have one.
DAGSTER_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_queue:
  dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: 2
  pools:
    default_limit: 2
"""


@dataclass(frozen=True)
class E2EInstance:
    home: Path
    data_dir: Path
    logs: Path
    env: dict[str, str]


@dataclass(frozen=True)
class Webserver:
    url: str
    graphql: GraphQL
    process: ProcessGroup
    log: Path


@dataclass(frozen=True)
class Daemon:
    process: ProcessGroup
    log: Path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test item, so a fixture can tell that its test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _trim_sample_days(target: Path) -> None:
    target.mkdir(parents=True)
    for day in PARTITIONS:
        with (REPO_ROOT / "data" / "raw" / f"{day}.jsonl").open(encoding="utf-8") as source:
            lines = [line for _, line in zip(range(DOCS_PER_DAY), source, strict=False)]
        (target / f"{day}.jsonl").write_text("".join(lines), encoding="utf-8")


@pytest.fixture(scope="package")
def e2e_instance(tmp_path_factory: pytest.TempPathFactory) -> E2EInstance:
    root = tmp_path_factory.mktemp("e2e")
    home, data_dir, logs = root / "dagster_home", root / "data", root / "logs"
    home.mkdir()
    logs.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    _trim_sample_days(data_dir / "raw")
    # The developer's shell must not leak an API key or another instance into the servers.
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PROJECT_ENV_PREFIXES)}
    env.update(DAGSTER_HOME=str(home), LLM_PIPELINE_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return E2EInstance(home=home, data_dir=data_dir, logs=logs, env=env)


def _start(command: list[str], instance: E2EInstance, log: Path) -> ProcessGroup:
    with log.open("wb") as out:
        return ProcessGroup(command, cwd=REPO_ROOT, env=instance.env, stdout=out, stderr=out)


def _stop(process: ProcessGroup, log: Path) -> None:
    try:
        process.stop(grace_s=20, term_s=5)
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / log.name).write_bytes(log.read_bytes())


@pytest.fixture(scope="package")
def webserver(e2e_instance: E2EInstance) -> Iterator[Webserver]:
    port = free_port()
    log = e2e_instance.logs / "webserver.log"
    command = [str(_BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    process = _start(command, e2e_instance, log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(
            f"{url}/server_info", timeout_s=_STARTUP_S, exited=process.poll, describe=lambda: tail(log)
        )
        yield Webserver(url=url, graphql=GraphQL(url), process=process, log=log)
    finally:
        _stop(process, log)


@pytest.fixture(scope="package")
def daemon(e2e_instance: E2EInstance) -> Iterator[Daemon]:
    log = e2e_instance.logs / "daemon.log"
    process = _start([str(_BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], e2e_instance, log)
    try:
        yield Daemon(process=process, log=log)
    finally:
        _stop(process, log)


def _wait_for_backfill(webserver: Webserver, daemon: Daemon, backfill_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + _BACKFILL_S
    while True:
        answer = webserver.graphql.execute(BACKFILL_STATUS, {"backfillId": backfill_id})
        backfill = expect_type(answer["partitionBackfillOrError"], "PartitionBackfill")
        if backfill["status"] in _TERMINAL:
            return backfill
        if daemon.process.poll() is not None:
            raise AssertionError(f"dagster-daemon exited ({daemon.process.poll()})\n{tail(daemon.log)}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"backfill {backfill_id} still {backfill['status']} after {_BACKFILL_S} s: "
                f"{[(r['runId'][:8], r['status']) for r in backfill['runs']]}\n{tail(daemon.log)}"
            )
        time.sleep(1)


@pytest.fixture(scope="package")
def completed_backfill(webserver: Webserver, daemon: Daemon) -> dict[str, Any]:
    """Every sample day of the four assets, launched like the UI's backfill button, run to the end.

    Launched as soon as the daemon process exists: its first pass over backfills then finds this
    one, instead of the pass 30 s later.
    """
    params = backfill_params(ASSETS, PARTITIONS)
    answer = webserver.graphql.execute(LAUNCH_BACKFILL, {"backfillParams": params})
    backfill_id = expect_type(answer["launchPartitionBackfill"], "LaunchBackfillSuccess")["backfillId"]
    return _wait_for_backfill(webserver, daemon, backfill_id)
