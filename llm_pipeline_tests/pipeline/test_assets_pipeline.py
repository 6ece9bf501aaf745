"""The whole chain materialized in-process against the simulator: files, rows, metadata, checks."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from llm_pipeline.definitions import pipeline_assets
from llm_pipeline.prompts.classifications import DEFAULT_TAXONOMY
from llm_pipeline_tests.fixtures.pipeline import PipelineHarness, metadata_of

LLM_TABLES = ("extracted_entities", "classifications", "corpus_report")
CALL_COLUMNS = ("model", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "attempts", "cached")


def test_every_table_has_one_row_per_document_with_status_error_and_cost(pipeline: PipelineHarness) -> None:
    result = pipeline.materialize()
    assert result.success

    raw = pipeline.table("raw_documents")
    assert len(raw) == 320
    assert raw.status.value_counts().to_dict() == {"ok": 313, "rejected": 7}
    for asset in LLM_TABLES:
        table = pipeline.table(asset)
        assert pipeline.path(asset).name == "2026-11-20.parquet"
        assert sorted(table.doc_id) == sorted(raw.doc_id), asset
        assert table.doc_id.is_unique
        assert set(table.status) <= {"ok", "error", "rejected", "skipped"}
        assert {"status", "error", *CALL_COLUMNS} <= set(table.columns)
        rejected = table[table.doc_id.isin(raw.doc_id[raw.status == "rejected"])]
        assert (rejected.status == "rejected").all()
        assert rejected.error.str.len().gt(0).all()
        not_ok = table[table.status != "ok"]
        assert not_ok.error.notna().all(), f"{asset}: a non-ok row without a reason"

    entities = pipeline.table("extracted_entities")
    ok = entities[entities.status == "ok"]
    assert len(ok) >= 300
    assert (ok.model == "claude-haiku-5-5").all()
    assert (ok.input_tokens > 0).all()
    assert (ok.output_tokens > 0).all()
    assert (ok.cost_usd > 0).all()
    assert (ok.attempts >= 1).all()
    assert not ok.cached.any()
    assert ok.topics.map(len).gt(0).all()

    labels = pipeline.table("classifications")
    assert set(labels.label.dropna()) <= set(DEFAULT_TAXONOMY)
    assert labels[labels.status == "ok"].confidence.between(0, 1).all()

    report = pipeline.table("corpus_report")
    included = report[report.included]
    assert len(included) == (labels.status == "ok").sum()
    assert included.headline.nunique() == 1
    assert included.summary.str.count("\n\n").eq(1).all()  # two paragraphs
    assert included.input_tokens.sum() == metadata_of(result, "corpus_report")["input_tokens"]


def test_metadata_shows_documents_tokens_cost_latency_and_retries(pipeline: PipelineHarness) -> None:
    result = pipeline.materialize()
    for asset in LLM_TABLES:
        meta = metadata_of(result, asset)
        assert meta["documents"] == 320
        assert meta["documents_rejected"] == 7
        assert meta["row_count"] == 320
        assert meta["path"].endswith(f"{asset}/2026-11-20.parquet")
        for key in ("input_tokens", "output_tokens", "cost_usd", "latency_p50_ms", "latency_p95_ms"):
            assert meta[key] > 0, (asset, key)
        for key in ("attempts", "retries", "rate_limited_429s", "wall_time_s", "ledger_hits", "preview"):
            assert key in meta, (asset, key)
        assert meta["latency_p95_ms"] >= meta["latency_p50_ms"]
    assert "## " in metadata_of(result, "corpus_report")["report"]
    entities = metadata_of(result, "extracted_entities")
    assert entities["calls"] >= entities["documents_ok"]


def test_usage_metadata_follows_dagster_anthropic_keys_per_model(pipeline: PipelineHarness) -> None:
    """`anthropic.*` (the keys Dagster's Anthropic integration writes), totals and per model."""
    first = pipeline.materialize()
    for asset in LLM_TABLES:
        meta = metadata_of(first, asset)
        answered = pipeline.table(asset).query("status == 'ok' and not cached")
        # One call per answered document (two when repaired); the report is one call per day.
        expected = 1 if asset == "corpus_report" else len(answered)
        assert meta["anthropic.calls"] >= expected > 0, asset
        assert meta["anthropic.input_tokens"] == meta["input_tokens"], asset
        assert meta["anthropic.output_tokens"] == meta["output_tokens"], asset
        for key in ("calls", "input_tokens", "output_tokens", "cache_creation_input_tokens"):
            assert meta[f"anthropic.claude-haiku-5-5.{key}"] == meta[f"anthropic.{key}"], (asset, key)
        # the per-document steps read their shared prefix from the cache; the report is one call
        assert (meta["anthropic.cache_read_input_tokens"] > 0) is (asset != "corpus_report"), asset
    assert metadata_of(first, "corpus_report")["anthropic.calls"] == 1
    # A re-run is answered from the ledger: nothing is consumed, so nothing is counted.
    again = pipeline.materialize()
    for asset in LLM_TABLES:
        assert metadata_of(again, asset)["anthropic.calls"] == 0, asset


def test_all_checks_pass_on_a_clean_run(pipeline: PipelineHarness) -> None:
    result = pipeline.materialize()
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e.passed for e in result.get_asset_check_evaluations()
    }
    assert len(evaluations) == 7
    assert all(evaluations.values()), evaluations


def test_a_prompt_injection_cannot_put_an_unknown_label_in_the_table(pipeline: PipelineHarness) -> None:
    """The simulator is gullible: it writes the injected word into the first enum field it fills."""
    pipeline.materialize()
    entities = pipeline.table("extracted_entities").set_index("doc_id")
    labels = pipeline.table("classifications").set_index("doc_id")
    victim = "20261120-prompt_injection"
    assert entities.loc[victim, "status"] == "error"
    assert "hacked" in entities.loc[victim, "error"]
    assert entities.loc[victim, "repaired"]  # one repair was tried before giving up
    assert labels.loc[victim, "status"] == "skipped"
    assert "hacked" not in set(labels.label.dropna())
    assert "hacked" not in str(pipeline.table("corpus_report").label.unique())


def test_a_rerun_is_answered_from_the_ledger_and_pays_nothing(pipeline: PipelineHarness) -> None:
    first = pipeline.materialize()
    calls = pipeline.simulator.control.stats()["attempts"]
    assert calls > 600

    second = pipeline.materialize()
    assert second.success
    assert pipeline.simulator.control.stats()["attempts"] == calls, "the re-run called the API"
    for asset in LLM_TABLES:
        table = pipeline.table(asset)
        attempted = table[table.status.isin(["ok", "error"])]
        assert attempted.cached.all(), asset
        meta = metadata_of(second, asset)
        assert meta["ledger_hits"] == meta["calls"] > 0
        assert meta["cost_usd"] == 0
        assert meta["input_tokens"] == 0
    before, after = metadata_of(first, "classifications"), metadata_of(second, "classifications")
    assert before["documents_ok"] == after["documents_ok"]


def test_refresh_skips_the_ledger_and_calls_again(pipeline: PipelineHarness) -> None:
    pipeline.materialize()
    calls = pipeline.simulator.control.stats()["attempts"]
    pipeline.materialize(refresh=True)
    assert pipeline.simulator.control.stats()["attempts"] >= 2 * calls - 5


@pytest.mark.slow
def test_transient_faults_lose_nothing_and_pay_once(pipeline: PipelineHarness) -> None:
    pipeline.simulator.control.set_faults(p429=0.02, retry_after_s=0.2, p500=0.02, p529=0.01, p_drop=0.005)
    result = pipeline.materialize()
    assert result.success
    stats = pipeline.simulator.control.stats()
    assert stats["status_counts"].get("500", 0) + stats["status_counts"].get("529", 0) > 0
    assert stats["max_successes_per_request"] == 1
    assert stats["duplicate_successes"] == 0
    entities = pipeline.table("extracted_entities")
    assert (entities.status != "error").sum() >= 319  # only the prompt injection fails
    assert entities.attempts.max() > 1


def test_bad_answers_get_one_repair_then_an_error_row_and_the_rest_continue(
    pipeline: PipelineHarness,
) -> None:
    pipeline.simulator.control.set_faults(p_malformed=0.2, p_bad_json=0.1, gullible=True)
    result = pipeline.materialize(assets=pipeline_assets[:2])
    assert result.success
    entities = pipeline.table("extracted_entities")
    assert len(entities) == 320
    repaired = entities[entities.repaired]
    assert len(repaired) > 30
    assert (repaired.status == "ok").sum() > len(repaired) / 2  # most repairs work
    errors = entities[entities.status == "error"]
    assert len(errors) >= 1
    assert errors.error.str.contains("after 1 repair attempt").all()
    assert errors.error.str.contains("schema|JSON").all()
    assert (entities.status == "ok").sum() > 250


def test_the_report_request_does_not_depend_on_row_order(pipeline: PipelineHarness) -> None:
    """Regression: tables are written in completion order, so the report's samples (and with them
    its request fingerprint) changed between runs and a re-run paid for the report again."""
    pipeline.materialize()
    for asset in ("extracted_entities", "classifications"):
        path = pipeline.path(asset)
        table = pq.read_table(path)
        pq.write_table(table.take(list(reversed(range(table.num_rows)))), path)
    calls = pipeline.simulator.control.stats()["attempts"]
    result = pipeline.materialize(selection=["corpus_report"])
    assert result.success
    assert pipeline.simulator.control.stats()["attempts"] == calls
