"""What a step says about its rate limits: the limits in effect and where each came from, in the run
log when the step starts calling and whenever they change, and in the materialization metadata."""

from __future__ import annotations

from llm_pipeline.definitions import pipeline_assets
from llm_pipeline.simulator import Limits
from llm_pipeline_tests.fixtures.pipeline import PipelineHarness, metadata_of

MODEL = "claude-haiku-5-5"
SERVER = Limits(rpm=6_000, itpm=6_000_000, otpm=1_200_000, burst_seconds=10.0)


def test_learned_limits_and_their_sources_in_the_run_log_and_the_metadata(pipeline: PipelineHarness) -> None:
    pipeline.simulator.control.configure(limits=SERVER)
    no_token_caps = {"itpm": None, "otpm": None}
    result = pipeline.materialize(assets=pipeline_assets[:2], rpm=3_000, **no_token_caps)
    assert result.success
    log = pipeline.log_messages(result)
    assert any("rate limits: learned from the API's headers, capped at rpm <= 3,000" in m for m in log)
    started = [m for m in log if m.startswith(f"extracted_entities: rate limits for {MODEL} at 127.0.0.1:")]
    assert "nothing learned yet, so the first request goes alone" in started[0]
    learned = [m for m in log if "(from the API's headers)" in m]
    assert "rpm 3,000 (configured cap), itpm 6,000,000 (headers), otpm 1,200,000 (headers)" in learned[0]
    metadata = metadata_of(result, "extracted_entities")
    assert (metadata["rate_limit_rpm"], metadata["rate_limit_itpm"]) == (3_000, 6_000_000)
    assert metadata["rate_limit_sources"] == "rpm configured cap, itpm headers, otpm headers, burst headers"
    assert metadata["rate_limits"][MODEL]["otpm"] == {"value": 1_200_000, "source": "headers"}
    assert 9.0 < metadata["rate_limit_burst_s"] <= 10.0

    again = pipeline.materialize(assets=pipeline_assets[:2], refresh=True, **no_token_caps)
    assert again.success
    log = pipeline.log_messages(again)
    assert any(
        f"rate limits for {MODEL} at 127.0.0.1 (from the shared state): rpm 6,000 (headers)" in m for m in log
    )


def test_a_server_without_rate_limit_headers_is_a_warning_naming_the_variables(
    pipeline: PipelineHarness,
) -> None:
    pipeline.simulator.control.configure(limits=SERVER, rate_limit_headers=False)
    result = pipeline.materialize(assets=pipeline_assets[:2])
    assert result.success
    warnings = [m for m in pipeline.log_messages(result) if "sent no anthropic-ratelimit-* headers" in m]
    assert len(warnings) == 1
    assert "LLM_PIPELINE_RPM, LLM_PIPELINE_ITPM and LLM_PIPELINE_OTPM" in warnings[0]
    assert "rpm 1,000,000 (configured cap)" in warnings[0]
    assert metadata_of(result, "extracted_entities")["rate_limit_sources"].startswith("rpm configured cap")
