"""A real Dagster backfill in parallel OS processes against one spawned simulator (issue 6).

How the processes are launched, and why: the layout of a deployment, on one machine. A temporary
DAGSTER_HOME gets the repository's own `.dagster_home/dagster.yaml` (queued run coordinator,
backfill tag limit, `anthropic_api` pool). The code runs in its own code server (`dagster api
grpc -m llm_pipeline.definitions`, what the Helm chart's user-code deployment runs). The backfill
is submitted the way the web UI submits it (the `launchPartitionBackfill` GraphQL mutation, through
the `dagster-graphql` CLI), and a real `dagster-daemon` turns it into runs: its backfill daemon
makes one run per day with the whole chain in it (the assets' shared backfill policy), and its run
queue has the code server start each run as its own OS process (`DefaultRunLauncher`). So this exercises
what a user's backfill does, instance knobs included; only Kubernetes pods are local processes.
The daemon starts after the submission because its backfill loop looks for new backfills at start
and then only every 30 s; sharing one code server saves loading the code three times.

Every run process inherits its settings from the code server that starts it (the resource reads
env when a run launches): the simulator's URL, the limits, and `LLM_PIPELINE_STATE`, the one switch
between the scenarios (a SQLite directory, a Redis URL, or `memory` = each process on its own).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import BACKFILL_ID_TAG

from llm_pipeline.sample_data import write_day
from llm_pipeline.simulator import Latency, Limits, SimulatorConfig, SimulatorProcess
from llm_pipeline_tests._backfill_outcome import CLIENT_BURST_S, BackfillOutcome, BackfillScenario, RunSummary
from llm_pipeline_tests._servers import accepts_connections, free_port

__all__ = ["REPO_ROOT", "BackfillOutcome", "BackfillScenario", "run_backfill"]

REPO_ROOT = Path(__file__).resolve().parents[1]
_BIN = Path(sys.executable).parent
_POLL_S = 0.5
_CODE_SERVER_START_S = 60.0
#: A backfill run's day: `dagster/partition`, or with an explicit BackfillPolicy the start of the
#: (one-day) range it was given.
_PARTITION_TAGS = ("dagster/partition", "dagster/asset_partition_range_start")

_LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { stack }
  }
}
"""


def run_backfill(workdir: Path, scenario: BackfillScenario) -> BackfillOutcome:
    """Run the scenario end to end under `workdir` and return what the simulator saw."""
    data_dir = workdir / "data"
    for day in scenario.days:
        write_day(data_dir / "raw" / f"{day.isoformat()}.jsonl", day, scenario.docs_per_day, bad_lines=False)
    home = workdir / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO_ROOT / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")

    sim_config = SimulatorConfig(
        limits=Limits(rpm=scenario.rpm, burst_seconds=CLIENT_BURST_S),
        latency=Latency(median_s=scenario.latency_median_s, sigma=0.3),
        exit_after_s=scenario.timeout_s + 120,
    )
    with SimulatorProcess.start(sim_config) as sim:
        env = _run_env(home, data_dir, sim.base_url, scenario)
        code_server, workspace = _start_code_server(workdir, env)
        daemon = None
        try:
            backfill_id = _launch_backfill(workdir, workspace, env, scenario)
            daemon = _start(workdir / "daemon.log", ["dagster-daemon", "run", "-w", str(workspace)], env)
            runs = _wait_for_runs(home, backfill_id, len(scenario.days), scenario.timeout_s, daemon)
        finally:
            for process in (daemon, code_server):
                if process is not None:
                    _stop(process)
        stats = sim.control.stats(times=True)
        sim_started = time.time() - stats["uptime_s"]
    return BackfillOutcome(scenario, backfill_id, runs, stats, data_dir / "warehouse", sim_started)


def _run_env(home: Path, data_dir: Path, base_url: str, scenario: BackfillScenario) -> dict[str, str]:
    """What every process of the deployment sees: the instance, the simulator, the limits, the state."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ANTHROPIC_API_KEY": "sk-sim-backfill",
        "ANTHROPIC_BASE_URL": base_url,
        "LLM_PIPELINE_BACKEND": "anthropic",
        "LLM_PIPELINE_DATA_DIR": str(data_dir),
        "LLM_PIPELINE_RPM": str(scenario.rpm),
        # Only the request rate binds here: token limits far above what the scenario uses.
        "LLM_PIPELINE_ITPM": "1000000000",
        "LLM_PIPELINE_OTPM": "1000000000",
        "LLM_PIPELINE_STATE": scenario.state,
    }


def _start_code_server(workdir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    """`dagster api grpc` on a free port, and a workspace file that points at it."""
    port = free_port()
    server = _start(
        workdir / "code_server.log",
        ["dagster", "api", "grpc", "-m", "llm_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env,
    )
    deadline = time.monotonic() + _CODE_SERVER_START_S
    while not accepts_connections(port):
        if server.poll() is not None or time.monotonic() > deadline:
            _stop(server)
            raise RuntimeError(f"code server did not start, see {workdir / 'code_server.log'}")
        time.sleep(_POLL_S)
    workspace = workdir / "workspace.yaml"
    location = {"host": "127.0.0.1", "port": port, "location_name": "llm_pipeline"}
    workspace.write_text(json.dumps({"load_from": [{"grpc_server": location}]}))
    return server, workspace


def _launch_backfill(workdir: Path, workspace: Path, env: dict[str, str], scenario: BackfillScenario) -> str:
    """Submit the backfill as the web UI does; the daemon, started next, picks it up at once."""
    params = {
        "partitionNames": [day.isoformat() for day in scenario.days],
        "assetSelection": [{"path": list(key)} for key in scenario.asset_keys],
        "title": "parallel backfill acceptance",
    }
    response_path = workdir / "launch_backfill.json"
    subprocess.run(
        [
            str(_BIN / "dagster-graphql"),
            "-w", str(workspace),
            "-t", _LAUNCH_BACKFILL,
            "-v", json.dumps({"params": params}),
            "-o", str(response_path),
        ],
        env=env, cwd=REPO_ROOT, check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    result = json.loads(response_path.read_text())["data"]["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill was not launched: {result}")
    return str(result["backfillId"])


def _start(log_path: Path, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A Dagster command from this venv, in its own process group (stopped with its children)."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [str(_BIN / command[0]), *command[1:]],
            env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _wait_for_runs(
    home: Path, backfill_id: str, expected: int, timeout_s: float, daemon: subprocess.Popen[bytes]
) -> tuple[RunSummary, ...]:
    deadline = time.monotonic() + timeout_s
    runs_filter = dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id})
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while True:
            records = instance.get_run_records(filters=runs_filter)
            if len(records) >= expected and all(r.dagster_run.is_finished for r in records):
                return tuple(
                    RunSummary(
                        run_id=r.dagster_run.run_id,
                        partition=next(
                            (r.dagster_run.tags[t] for t in _PARTITION_TAGS if t in r.dagster_run.tags), None
                        ),
                        status=r.dagster_run.status.value,
                        start=r.start_time,
                        end=r.end_time,
                        failure=_failure(instance, r.dagster_run),
                    )
                    for r in records
                )
            if daemon.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited early with code {daemon.returncode}")
            if time.monotonic() > deadline:
                states = {r.dagster_run.run_id: r.dagster_run.status.value for r in records}
                raise TimeoutError(f"backfill {backfill_id} not done after {timeout_s} s: {states}")
            time.sleep(_POLL_S)


def _failure(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """The first step or run failure message of a failed run, so a failing test says why."""
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return None
    for record in instance.all_logs(run.run_id):
        event = record.dagster_event
        if event is not None and event.is_failure:
            error = getattr(event.event_specific_data, "error", None)
            return error.to_string() if error is not None else record.message
    return run.status.value


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started (e.g. the code server and its run workers), then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
