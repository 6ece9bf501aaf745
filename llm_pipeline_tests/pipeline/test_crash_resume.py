"""A run SIGKILLed mid-partition resumes without losing a document or paying twice (issue 5).

The run is a real `dagster asset materialize` process against a simulator in its own process. To
kill it at a well-defined moment, the simulator answers the first `ANSWERED` requests and then holds
every later one (a hang fault): the kill lands while calls are waiting, so "succeeded before the
kill" is exactly the answered set, with no response half-delivered. The re-run must complete every
document, and the simulator's ground truth must show each distinct request answered exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest

from llm_pipeline.simulator import Faults, Latency, ScheduledFault, Simulator, SimulatorConfig
from llm_pipeline_tests.fixtures.pipeline import PARTITION, REPO, TABLES
from llm_pipeline_tests.fixtures.processes import materialize, wait_until

ANSWERED = 120
CONCURRENCY = 8

pytestmark = pytest.mark.slow


def _all_held(sim: Simulator) -> bool:
    """Every answerable call answered and each worker waiting on a held one (not a passing moment
    of normal traffic, when `in_flight` can also equal the concurrency)."""
    stats = sim.control.stats()
    return stats["successes"] >= ANSWERED and stats["in_flight"] == CONCURRENCY


def test_sigkill_mid_partition_then_rerun_completes_and_pays_each_request_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    shutil.copy(REPO / "data" / "raw" / f"{PARTITION}.jsonl", data / "raw")
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = SimulatorConfig(latency=Latency(median_s=0.01), exit_after_s=600)
    with Simulator.spawn(config) as sim:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "LLM_PIPELINE_DATA_DIR": str(data),
            "LLM_PIPELINE_STATE": str(tmp_path / "state"),
            "LLM_PIPELINE_MAX_CONCURRENCY": str(CONCURRENCY),
            "LLM_PIPELINE_RPM": "1000000",
            "LLM_PIPELINE_ITPM": "1000000000",
            "LLM_PIPELINE_OTPM": "100000000",
            "ANTHROPIC_API_KEY": "sk-sim-test",
            "ANTHROPIC_BASE_URL": sim.base_url,
        }
        sim.control.set_faults(Faults(schedule=(ScheduledFault("hang", after=ANSWERED, count=None),)))

        run = materialize(env, start_new_session=True)
        try:
            wait_until(lambda: _all_held(sim), 120, "the answered calls, then every worker held")
        finally:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
        wait_until(lambda: sim.control.stats()["in_flight"] == 0, 30, "the killed run's calls to be dropped")
        before = sim.control.stats()
        assert before["successes"] == ANSWERED
        assert not (data / "warehouse" / "extracted_entities" / f"{PARTITION}.parquet").exists(), (
            "a killed step must not leave a file that looks like a finished partition"
        )

        sim.control.clear_faults()
        rerun = materialize(env)
        _, stderr = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, stderr.decode()[-3000:]

        after = sim.control.stats()
        assert after["max_successes_per_request"] == 1, "a request answered before the kill was paid again"
        assert after["duplicate_successes"] == 0
        raw = pd.read_parquet(data / "warehouse" / "raw_documents" / f"{PARTITION}.parquet")
        for table in TABLES[1:]:
            frame = pd.read_parquet(data / "warehouse" / table / f"{PARTITION}.parquet")
            assert sorted(frame.doc_id) == sorted(raw.doc_id), table
        entities = pd.read_parquet(data / "warehouse" / "extracted_entities" / f"{PARTITION}.parquet")
        assert entities.cached.sum() == ANSWERED  # answered before the kill: taken from the ledger
        assert (entities.status == "ok").sum() == 312  # all but the prompt injection

        again = materialize(env)
        _, stderr = again.communicate(timeout=300)
        assert again.returncode == 0, stderr.decode()[-3000:]
        assert sim.control.stats()["attempts"] == after["attempts"], "a re-materialization called the API"
