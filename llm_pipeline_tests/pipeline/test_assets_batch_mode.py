"""Batch mode (issue 7) through the real chain in-process against the simulator: the same rows as real
time at half the price, the saving in the metadata, the deadline path, cancellation and errored results.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anthropic
import numpy as np
import pandas as pd
import pytest

from llm_pipeline.claude.pricing import PRICES, cost
from llm_pipeline.definitions import pipeline_assets
from llm_pipeline.prompts.classifications import DEFAULT_TAXONOMY
from llm_pipeline_tests.fixtures.pipeline import TEST_KEY, PipelineHarness, failure_messages, metadata_of

LLM_TABLES = ("extracted_entities", "classifications", "corpus_report")
BATCH = {"mode": "batch", "batch_poll_s": 0.05, "batch_poll_max_s": 0.2}
ENTITIES = pipeline_assets[:2]  # raw_documents, extracted_entities


def batch_ids(pipeline: PipelineHarness) -> list[str]:
    """Every batch the simulator holds, oldest first (read through the real SDK)."""
    with anthropic.Anthropic(base_url=pipeline.simulator.base_url, api_key=TEST_KEY, max_retries=0) as sdk:
        return [b.id for b in sdk.messages.batches.list(limit=100)][::-1]


def prices(rows: pd.DataFrame, *, batch: bool) -> np.ndarray:
    """Each row's cost from its tokens at the list or the batch price, the prefix written with the
    1-hour TTL that batch mode's requests carry (their real-time retries included)."""
    columns = ["model", "input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"]
    return np.array(
        [
            cost(
                m,
                {
                    "input_tokens": i,
                    "output_tokens": o,
                    "cache_creation_input_tokens": w,
                    "cache_creation": {"ephemeral_1h_input_tokens": w},
                    "cache_read_input_tokens": r,
                },
                batch=batch,
            )
            for m, i, o, w, r in rows[columns].itertuples(index=False)
        ]
    )


def test_batch_mode_gives_the_rows_of_real_time_mode_at_half_the_price(
    pipeline: PipelineHarness, tmp_path: Path
) -> None:
    realtime = pipeline.materialize()
    expected = {asset: pipeline.table(asset) for asset in LLM_TABLES}
    realtime_cost = {asset: metadata_of(realtime, asset)["cost_usd"] for asset in LLM_TABLES}
    messages_calls = pipeline.simulator.control.stats()["attempts"]

    result = pipeline.materialize(state=str(tmp_path / "batch_state"), **BATCH)
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    stats = pipeline.simulator.control.stats()
    assert stats["batch"]["created"] == 3  # one batch per step
    assert stats["attempts"] - messages_calls == 1, "only the prompt injection's repair went real-time"

    for asset in LLM_TABLES:
        rows, want = pipeline.table(asset).set_index("doc_id"), expected[asset].set_index("doc_id")
        assert list(rows.columns) == list(want.columns)
        assert dict(rows.dtypes) == dict(want.dtypes)
        assert sorted(rows.index) == sorted(want.index)
        assert (rows.status == want.status[rows.index]).all(), asset
        paid = rows[rows.status.isin(["ok", "error"]) & ~rows.repaired]
        assert not paid.cached.any(), f"{asset}: this run's batch answers are not ledger hits"
        assert (paid.attempts == 1).all()
        assert (paid.input_tokens == want.input_tokens[paid.index]).all()
        # the prefix is written once per step (1-hour TTL in a batch, 5 minutes in real time)
        wrote = (paid.cache_write_tokens > 0) | (want.cache_write_tokens[paid.index] > 0)
        half = want.cost_usd[paid.index][~wrote].to_numpy() / 2
        assert paid.cost_usd[~wrote].to_numpy() == pytest.approx(half, abs=1.5e-9)  # whole nano-dollars
        if asset != "corpus_report":  # the report's one call is spread over its rows
            assert paid.cost_usd.to_numpy() == pytest.approx(prices(paid, batch=True), abs=1.5e-9)

        meta = metadata_of(result, asset)
        assert meta["mode"] == "batch"
        assert meta["batch_ids"]
        assert all(i.startswith("msgbatch_") for i in meta["batch_ids"])
        assert meta["batch_succeeded"] == meta["batch_answers"] == meta["batch_requests"] > 0
        premium = (
            PRICES["claude-haiku-5-5"].base.cache_write_1h - PRICES["claude-haiku-5-5"].base.cache_write_5m
        )
        one_hour = premium * rows.cache_write_tokens.sum() / 1e6
        assert meta["cost_usd_at_list_price"] == pytest.approx(realtime_cost[asset] + one_hour, rel=1e-3)
        assert meta["saved_usd"] == pytest.approx(meta["cost_usd_at_list_price"] - meta["cost_usd"], abs=2e-6)
        assert meta["saved_usd"] > 0.4 * realtime_cost[asset]
    labels = pipeline.table("classifications").set_index("doc_id").label.sort_index()
    assert labels.equals(expected["classifications"].set_index("doc_id").label.sort_index())
    assert labels.notna().sum() == 312
    assert set(labels.dropna()) <= set(DEFAULT_TAXONOMY)


def test_realtime_metadata_says_so_and_saves_nothing(pipeline: PipelineHarness) -> None:
    meta = metadata_of(pipeline.materialize(assets=ENTITIES), "extracted_entities")
    assert (meta["mode"], meta["saved_usd"]) == ("realtime", 0)
    assert meta["cost_usd_at_list_price"] == meta["cost_usd"]
    assert "batch_ids" not in meta
    assert "created" not in pipeline.simulator.control.stats()["batch"], "prefetch is a no-op in real time"


def test_a_batch_past_the_deadline_fails_the_step_by_id_and_the_next_run_collects_it(
    pipeline: PipelineHarness,
) -> None:
    pipeline.simulator.control.configure(batch_processing_s=1.5)
    failed = pipeline.materialize(assets=ENTITIES, batch_deadline_s=0.3, **BATCH)
    assert not failed.success
    (batch_id,) = batch_ids(pipeline)
    (message,) = failure_messages(failed)
    assert batch_id in message
    assert "re-run the partition later" in message
    assert not pipeline.path("extracted_entities").exists(), "no Parquet that looks like a finished partition"

    again = pipeline.materialize(assets=ENTITIES, **BATCH)
    assert again.success
    meta = metadata_of(again, "extracted_entities")
    assert (meta["batches_resumed"], meta["batches_submitted"], meta["batch_ids"]) == (1, 0, [batch_id])
    assert meta["batch_answers"] == 313
    stats = pipeline.simulator.control.stats()
    assert stats["batch"]["created"] == 1, "the late batch was submitted again"
    assert stats["attempts"] == 1  # the prompt injection's repair


def test_errored_and_expired_batch_results_are_answered_in_real_time_at_full_price(
    pipeline: PipelineHarness,
) -> None:
    pipeline.simulator.control.configure(batch_p_errored=0.1, batch_p_expired=0.1)
    result = pipeline.materialize(assets=ENTITIES, **BATCH)
    meta = metadata_of(result, "extracted_entities")
    errored, expired = meta["batch_errored"], meta["batch_expired"]
    assert errored > 10
    assert expired > 10
    assert meta["batch_left_for_realtime"] == errored + expired
    rows = pipeline.table("extracted_entities")
    assert (rows.status == "ok").sum() == 312  # as in real-time mode: all but the prompt injection
    assert meta["batch_answers"] == 313 - errored - expired
    from_batch = rows.request_id == meta["batch_ids"][0]
    realtime = rows[(rows.status == "ok") & ~from_batch]
    # The prompt injection ends as an error row either way; it may be one of the real-time calls.
    assert len(realtime) in (errored + expired, errored + expired - 1)
    assert realtime.cost_usd.tolist() == pytest.approx(prices(realtime, batch=False), abs=1e-9)
    assert rows[from_batch].cost_usd.tolist() == pytest.approx(prices(rows[from_batch], batch=True), abs=1e-9)
    assert pipeline.simulator.control.stats()["max_successes_per_request"] == 1


def test_a_canceled_batch_is_reported_in_the_log_and_the_metadata(pipeline: PipelineHarness) -> None:
    pipeline.simulator.control.configure(batch_processing_s=60.0)
    outcome: dict[str, object] = {}
    run = threading.Thread(
        target=lambda: outcome.update(result=pipeline.materialize(assets=ENTITIES, **BATCH))
    )
    run.start()
    try:
        ids: list[str] = []
        for _ in range(600):
            ids = batch_ids(pipeline)
            if ids and pipeline.simulator.control.stats()["batch"].get("retrieved", 0):
                break
            time.sleep(0.05)
        (batch_id,) = ids
        with anthropic.Anthropic(base_url=pipeline.simulator.base_url, api_key=TEST_KEY) as sdk:
            sdk.messages.batches.cancel(batch_id)
    finally:
        run.join(timeout=120)
    result = outcome["result"]
    assert result.success  # type: ignore[attr-defined]
    meta = metadata_of(result, "extracted_entities")  # type: ignore[arg-type]
    assert (meta["batch_canceled"], meta["batches_canceled"], meta["batch_left_for_realtime"]) == (
        313,
        [batch_id],
        313,
    )
    warnings = [m for m in pipeline.log_messages(result) if m and f"{batch_id} was canceled" in m]  # type: ignore[arg-type]
    assert warnings
    rows = pipeline.table("extracted_entities")
    assert (rows.status == "ok").sum() == 312
    assert pipeline.simulator.control.stats()["batch"]["created"] == 1, (
        "a canceled batch is never resubmitted"
    )
