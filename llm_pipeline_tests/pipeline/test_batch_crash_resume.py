"""Batch mode survives a SIGKILL while it polls: the re-run resumes the batch, paying nothing twice (issue 7).

A real `dagster asset materialize` process in batch mode submits extracted_entities' batch to a
simulator in its own process, records it, and starts polling; it is killed then, while the batch is
still processing. The re-run of the whole partition must find the recorded batch, collect it, and
submit only what the downstream steps need: the simulator's batch create count grows by exactly their
two batches, and every distinct request is answered exactly once.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import anthropic
import dagster as dg
import pandas as pd
import pytest

from llm_pipeline.claude.state import open_state
from llm_pipeline.simulator import Latency, Simulator, SimulatorConfig
from llm_pipeline_tests.fixtures.pipeline import PARTITION, REPO
from llm_pipeline_tests.fixtures.processes import materialize, wait_until

pytestmark = pytest.mark.slow

#: Long enough that the kill (right after the first poll) lands while the batch is processing.
PROCESSING_S = 6.0


def _pending(state: Path) -> list[str]:
    async def read() -> list[str]:
        backend = open_state(str(state), lambda: 0.0)
        try:
            return [batch.batch_id for batch in await backend.batches.pending("127.0.0.1")]
        finally:
            await backend.aclose()

    return asyncio.run(read())


def test_sigkill_while_polling_then_rerun_resumes_the_batch_and_submits_nothing_new(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    shutil.copy(REPO / "data" / "raw" / f"{PARTITION}.jsonl", data / "raw")
    home, state = tmp_path / "dagster_home", tmp_path / "state"
    home.mkdir()
    config = SimulatorConfig(
        latency=Latency(median_s=0.005), batch_processing_s=PROCESSING_S, exit_after_s=600
    )
    with Simulator.spawn(config) as sim:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "LLM_PIPELINE_DATA_DIR": str(data),
            "LLM_PIPELINE_STATE": str(state),
            "LLM_PIPELINE_MODE": "batch",
            "LLM_PIPELINE_BATCH_POLL_S": "0.2",
            "LLM_PIPELINE_BATCH_POLL_MAX_S": "0.5",
            "LLM_PIPELINE_RPM": "1000000",
            "LLM_PIPELINE_ITPM": "1000000000",
            "LLM_PIPELINE_OTPM": "100000000",
            "ANTHROPIC_API_KEY": "sk-sim-test",
            "ANTHROPIC_BASE_URL": sim.base_url,
        }
        run = materialize(env, start_new_session=True)
        try:
            wait_until(lambda: sim.control.stats()["batch"].get("retrieved", 0) >= 1, 120, "the first poll")
        finally:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
        with anthropic.Anthropic(base_url=sim.base_url, api_key="sk-sim-test", max_retries=0) as sdk:
            (batch,) = sdk.messages.batches.list().data
            assert batch.processing_status == "in_progress", "the kill must land while the batch processes"
        assert _pending(state) == [batch.id], "the batch id is recorded before polling"
        assert not (data / "warehouse" / "extracted_entities" / f"{PARTITION}.parquet").exists()
        before = sim.control.stats()["batch"]
        assert (before["created"], before["requests"]) == (1, 313)

        sim.control.configure(batch_processing_s=0.2)  # the downstream steps' new batches end quickly
        rerun = materialize(env)
        _, stderr = rerun.communicate(timeout=300)
        assert rerun.returncode == 0, stderr.decode()[-3000:]

        after = sim.control.stats()
        assert after["batch"]["created"] == 3, (
            "entities' batch was resubmitted (expected +2: downstream steps)"
        )
        assert after["batch"]["requests"] - before["requests"] == 312 + 1  # classifications + the report
        assert after["max_successes_per_request"] == 1
        assert after["successes"] == 1  # the prompt injection's repair, the one real-time call
        assert _pending(state) == []

    with dg.DagsterInstance.from_config(str(home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("extracted_entities"))
        assert event is not None
        meta = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}  # type: ignore[union-attr]
    assert (meta["batches_resumed"], meta["batches_submitted"], meta["batch_ids"]) == (1, 0, [batch.id])
    assert meta["batch_answers"] == 313
    entities = pd.read_parquet(data / "warehouse" / "extracted_entities" / f"{PARTITION}.parquet")
    assert (entities.status == "ok").sum() == 312
    assert not entities.cached.any(), "the resumed batch's answers are this run's (batch) calls"
    for table in ("classifications", "corpus_report"):
        frame = pd.read_parquet(data / "warehouse" / table / f"{PARTITION}.parquet")
        assert sorted(frame.doc_id) == sorted(entities.doc_id), table
