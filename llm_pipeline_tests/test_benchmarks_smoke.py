"""Keeps `make bench` alive: every scenario runs tiny against its own spawned simulator, and the
CLI writes its JSON and Markdown. No figure is asserted (timing on a shared machine is noise);
what is asserted is what must hold at any size: nothing lost, nothing paid twice, every target
measured, the report complete."""

from __future__ import annotations

import json

import pytest

from benchmarks.cli import main
from benchmarks.harness import ScenarioResult
from benchmarks.scenario_baselines import run_baselines
from benchmarks.scenario_caching import run_caching
from benchmarks.scenario_latency import run_latency
from benchmarks.scenario_limits import run_limits
from benchmarks.scenario_memory import run_memory
from benchmarks.scenario_overhead import run_overhead
from benchmarks.scenario_rate import run_rate, run_tokens


def measured(result: ScenarioResult) -> None:
    assert result.rows
    assert result.definitions, "every ratio comes with its definition"
    assert all(target.value is not None for target in result.targets)
    assert all(set(result.columns) <= set(row) for row in result.rows)


@pytest.fixture(scope="module")
def rate_tiny() -> ScenarioResult:
    return run_rate(12)


@pytest.fixture(scope="module")
def tokens_tiny() -> ScenarioResult:
    return run_tokens(12)


@pytest.mark.parametrize("scenario", ["rate", "tokens"])
def test_rate_and_token_bound_tiny(
    scenario: str, rate_tiny: ScenarioResult, tokens_tiny: ScenarioResult
) -> None:
    result = rate_tiny if scenario == "rate" else tokens_tiny
    measured(result)
    (row,) = result.rows
    assert row["documents"] == 12
    assert row["lost"] == 0
    assert row["duplicate_paid_calls"] == 0
    assert row["attempts"] >= 12


def test_prompt_caching_tiny() -> None:
    result = run_caching(20)
    measured(result)
    cached, uncached = result.rows
    assert (cached["documents"], cached["lost"], uncached["lost"]) == (20, 0, 0)
    assert (cached["cache_writes"], cached["cache_reads"]) == (1, 19), "the warm-up: one write, then reads"
    assert (uncached["cache_writes"], uncached["cache_reads"]) == (0, 0)
    assert cached["duplicate_paid_calls"] == uncached["duplicate_paid_calls"] == 0


def test_latency_bound_tiny() -> None:
    result = run_latency(64)
    measured(result)
    assert result.rows[0]["lost"] == 0
    assert result.rows[0]["max_in_flight_seen_by_server"] <= 64


def test_overhead_tiny() -> None:
    result = run_overhead(40, rounds=1, warmup=10)
    measured(result)
    variants = {row["variant"] for row in result.rows}
    assert {
        "bare SDK, aiohttp",
        "bare SDK, httpx2 (SDK default)",
        "llm_pipeline, SQLite state (default)",
    } <= variants
    assert "llm_pipeline, Redis state" in variants, "redis-server is part of the test environment"


@pytest.mark.slow
def test_memory_tiny() -> None:
    result = run_memory((60,))
    measured(result)
    local, s3 = result.rows
    assert (local["warehouse"], s3["warehouse"]) == ("local disk", "S3 (moto, 127.0.0.1)")
    for row in (local, s3):
        assert row["rows"] == 60, "one row per input line, awkward lines included"
        assert row["peak_rss_mb"] > 0
    assert s3["wall_vs_local"] is not None


@pytest.mark.slow
def test_baselines_tiny(rate_tiny: ScenarioResult, tokens_tiny: ScenarioResult) -> None:
    result = run_baselines(rate_tiny.rows[0], n=12, sample=2, ours_tokens=tokens_tiny.rows[0])
    measured(result)
    ours, sequential, gathered, service, ours_tokens, service_tokens = result.rows
    assert ours["client"] == "llm_pipeline (scenario 1)"
    assert ours["lost"] == 0
    assert ours == {key: rate_tiny.rows[0][key] for key in result.columns} | {"client": ours["client"]}
    assert sequential["documents"] == 12, "the sample is projected to every document"
    assert all(row["documents"] == 12 for row in (gathered, service, service_tokens))
    assert ours_tokens["client"] == "llm_pipeline (scenario 2)"


@pytest.mark.slow
def test_limits_not_configured_tiny() -> None:
    result = run_limits(12)
    measured(result)
    assert len(result.rows) == 4
    assert all(row["lost"] == 0 and row["duplicate_paid_calls"] == 0 for row in result.rows)


def test_cli_writes_json_and_markdown(tmp_path, capsys) -> None:
    (result,) = main(["-s", "3", "--scale", "0.05", "--out", str(tmp_path)])
    assert result.key == "3"
    (json_path,) = tmp_path.glob("*-partial.json")
    document = json.loads(json_path.read_text())
    assert document["machine"]["logical_cores"] >= 1
    assert document["machine"]["packages"]["anthropic"]
    assert [s["key"] for s in document["scenarios"]] == ["3"]
    markdown = (tmp_path / json_path.name.replace(".json", ".md")).read_text()
    assert "## 3. Latency-bound" in markdown
    assert "| calls/s / 64 |" in markdown
    assert markdown in capsys.readouterr().out
