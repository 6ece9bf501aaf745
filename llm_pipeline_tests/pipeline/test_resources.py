"""ClaudeResource: settings from config over env over defaults, backends, and systemic failures."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from llm_pipeline.definitions import pipeline_assets
from llm_pipeline.pipeline.resources import DEFAULT_MODEL, SIMULATOR_LIMITS, ClaudeResource
from llm_pipeline.settings import resolve_state
from llm_pipeline_tests.fixtures.pipeline import PipelineHarness, failure_messages, metadata_of


def _resolved(resource: ClaudeResource):
    return resource._resolve()


def test_no_key_means_the_simulator_backend_with_its_limits() -> None:
    """The embedded simulator enforces and reports its limits; the client caps nothing, it learns."""
    resource = ClaudeResource()
    backend, settings = _resolved(resource)
    assert backend == "simulator"
    assert settings.model == DEFAULT_MODEL
    assert (settings.rpm, settings.itpm, settings.otpm, settings.max_concurrency) == (None, None, None, None)
    limits = resource._simulator_config(settings).limits
    assert (limits.rpm, limits.itpm, limits.otpm) == tuple(SIMULATOR_LIMITS.values())
    assert settings.base_url is None  # the embedded simulator's URL is set at setup


def test_caps_and_share_from_env_and_the_embedded_simulator_at_the_caps() -> None:
    os.environ.update(LLM_PIPELINE_RPM="600", LLM_PIPELINE_LIMIT_SHARE="0.5")
    resource = ClaudeResource()
    _, settings = _resolved(resource)
    assert (settings.rpm, settings.itpm, settings.limit_share) == (600, None, 0.5)
    limits = resource._simulator_config(settings).limits
    assert (limits.rpm, limits.itpm) == (600, SIMULATOR_LIMITS["itpm"]), "an account at the caps"
    assert _resolved(ClaudeResource(limit_share=0.25))[1].limit_share == 0.25


def test_a_key_in_the_environment_selects_the_real_api(tmp_path: Path) -> None:
    os.environ.update(
        ANTHROPIC_API_KEY="sk-ant-env",
        ANTHROPIC_BASE_URL="http://127.0.0.1:1",
        LLM_PIPELINE_RPM="120",
        LLM_PIPELINE_MODEL="claude-sonnet-5-5",
        LLM_PIPELINE_FALLBACK_MODEL="claude-haiku-5-5",
        LLM_PIPELINE_STATE=str(tmp_path / "state"),
    )
    backend, settings = _resolved(ClaudeResource())
    assert backend == "anthropic"
    assert (settings.api_key, settings.base_url, settings.rpm) == ("sk-ant-env", "http://127.0.0.1:1", 120)
    assert (settings.model, settings.fallback_model) == ("claude-sonnet-5-5", "claude-haiku-5-5")
    assert settings.state == str((tmp_path / "state").resolve())
    assert "sk-ant-env" not in repr(settings)


def test_burst_seconds_from_config_or_env_reaches_the_limiter_and_the_embedded_simulator() -> None:
    os.environ["LLM_PIPELINE_BURST_SECONDS"] = "4"
    resource = ClaudeResource()
    _, settings = _resolved(resource)
    assert settings.burst_seconds == 4
    assert resource._simulator_config(settings).limits.burst_seconds == 4
    assert _resolved(ClaudeResource(burst_seconds=2.5))[1].burst_seconds == 2.5


def test_config_wins_over_the_environment() -> None:
    os.environ.update(ANTHROPIC_API_KEY="sk-ant-env", LLM_PIPELINE_RPM="120", LLM_PIPELINE_MODEL="env-model")
    _, settings = _resolved(ClaudeResource(rpm=60, model="config-model", state="memory"))
    assert (settings.rpm, settings.model, settings.state) == (60, "config-model", None)


def test_batch_mode_and_its_settings_come_from_config_over_env_over_defaults() -> None:
    assert _resolved(ClaudeResource())[1].mode == "realtime"
    os.environ.update(
        LLM_PIPELINE_MODE="Batch",
        LLM_PIPELINE_BATCH_POLL_S="2.5",
        LLM_PIPELINE_BATCH_DEADLINE_S="600",
        LLM_PIPELINE_BATCH_RETRY="batch",
    )
    settings = _resolved(ClaudeResource(batch_poll_max_s=20))[1]
    assert (settings.mode, settings.batch_poll_s, settings.batch_poll_max_s) == ("batch", 2.5, 20)
    assert (settings.batch_deadline_s, settings.batch_retry) == (600, "batch")
    overridden = _resolved(ClaudeResource(mode="realtime", batch_deadline_s=60, batch_retry="realtime"))[1]
    assert (overridden.mode, overridden.batch_deadline_s, overridden.batch_retry) == (
        "realtime",
        60,
        "realtime",
    )


def test_the_environment_is_read_when_a_run_launches_not_at_import() -> None:
    resource = ClaudeResource()
    os.environ["LLM_PIPELINE_MAX_CONCURRENCY"] = "7"
    assert _resolved(resource)[1].max_concurrency == 7


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLM_PIPELINE_BACKEND": "anthropic"}, "ANTHROPIC_API_KEY is not set"),
        ({"LLM_PIPELINE_BACKEND": "openai"}, "must be one of"),
        ({"LLM_PIPELINE_RPM": "fast"}, "LLM_PIPELINE_RPM='fast' is not a number"),
        ({"LLM_PIPELINE_RPM": "0"}, r"LLM_PIPELINE_RPM='0' must be a number > 0"),
        ({"LLM_PIPELINE_ITPM": "-50000"}, r"LLM_PIPELINE_ITPM='-50000' must be a number > 0"),
        (
            {"LLM_PIPELINE_LIMIT_SHARE": "1.5"},
            r"LLM_PIPELINE_LIMIT_SHARE='1.5' must be a fraction in \(0, 1\]",
        ),
        ({"LLM_PIPELINE_LIMIT_SHARE": "0"}, r"LLM_PIPELINE_LIMIT_SHARE='0' must be a fraction"),
        ({"LLM_PIPELINE_MAX_CONCURRENCY": "0"}, r"LLM_PIPELINE_MAX_CONCURRENCY='0' must be an integer >= 1"),
        ({"LLM_PIPELINE_MODE": "nightly"}, "mode must be one of"),
        ({"LLM_PIPELINE_BATCH_RETRY": "never"}, "batch_retry must be one of"),
        ({"LLM_PIPELINE_BATCH_DEADLINE_S": "soon"}, "LLM_PIPELINE_BATCH_DEADLINE_S='soon' is not a number"),
    ],
)
def test_bad_settings_fail_with_a_message_naming_them(env: dict[str, str], message: str) -> None:
    os.environ.update(env)
    with pytest.raises(dg.Failure, match=message):
        _resolved(ClaudeResource())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"otpm": -1}, r"LLM_PIPELINE_OTPM \(resource config\)='-1.0' must be a number > 0"),
        ({"limit_share": 2.0}, r"LLM_PIPELINE_LIMIT_SHARE \(resource config\)='2.0' must be a fraction"),
        ({"burst_seconds": 0}, r"LLM_PIPELINE_BURST_SECONDS \(resource config\)='0.0' must be a number > 0"),
    ],
)
def test_bad_config_values_are_named_like_the_variables(config: dict, message: str) -> None:
    with pytest.raises(dg.Failure, match=message):
        _resolved(ClaudeResource(**config))


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [
        ("redis://r:6379/0", {"LLM_PIPELINE_STATE": "{tmp}/env"}, "redis://r:6379/0"),
        (None, {"LLM_PIPELINE_STATE": "memory"}, None),
        (None, {"DAGSTER_HOME": "{tmp}/home"}, "{tmp}/home"),
        (None, {}, "{cwd}/.llm_state"),
        ("{tmp}/cfg", {"LLM_PIPELINE_STATE": "{tmp}/env"}, "{tmp}/cfg"),
    ],
)
def test_state_location(
    configured: str | None, env: dict[str, str], expected: str | None, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fill = {"tmp": str(tmp_path.resolve()), "cwd": str(tmp_path.resolve())}
    os.environ.update({k: v.format(**fill) for k, v in env.items()})
    resolved = resolve_state(configured.format(**fill) if configured else None)
    assert resolved == (expected.format(**fill) if expected else None)
    if resolved and not resolved.startswith("redis"):
        assert Path(resolved).is_dir()


def test_the_embedded_simulator_runs_the_chain_with_no_key(pipeline: PipelineHarness) -> None:
    """What `make demo` does: no key, no config, the simulator starts and stops with the run."""
    claude = ClaudeResource(state=str(pipeline.state_dir), simulator_latency_ms=0)
    result = pipeline.materialize(claude=claude)
    assert result.success
    assert metadata_of(result, "extracted_entities")["backend"] == "simulator"
    warnings = [m for m in pipeline.log_messages(result) if "embedded Anthropic simulator" in m]
    assert warnings, "the run log must say loudly that answers come from the simulator"
    assert pipeline.simulator.control.stats()["attempts"] == 0  # the fixture's server was not used


def test_a_rejected_api_key_fails_fast_and_writes_no_partition(pipeline: PipelineHarness) -> None:
    pipeline.simulator.control.configure(api_key="sk-the-right-one")
    result = pipeline.materialize(assets=pipeline_assets[:2])
    assert not result.success
    (message,) = failure_messages(result)
    assert "rejected the credentials" in message
    assert "ANTHROPIC_API_KEY" in message
    assert not pipeline.path("extracted_entities").exists()
    assert not list(pipeline.path("extracted_entities").parent.glob(".*tmp"))
    assert pipeline.simulator.control.stats()["status_counts"]["401"] <= 16  # at most one per worker


def test_an_outage_opens_the_breaker_and_fails_the_asset_fast(pipeline: PipelineHarness) -> None:
    pipeline.simulator.control.set_faults(outage=500)
    result = pipeline.materialize(assets=pipeline_assets[:2])
    assert not result.success
    (message,) = failure_messages(result)
    assert "circuit breaker" in message
    assert "LLM_PIPELINE_FALLBACK_MODEL" in message
    assert not pipeline.path("extracted_entities").exists()
    assert pipeline.simulator.control.stats()["attempts"] < 100  # not 313 documents x every retry


def test_with_a_fallback_model_an_outage_of_the_primary_is_survived(pipeline: PipelineHarness) -> None:
    """The primary is down; once its breaker opens, every document is answered by the fallback."""
    pipeline.simulator.control.set_faults(outage=500, models=["claude-haiku-5-5"])
    result = pipeline.materialize(assets=pipeline_assets[:2], fallback_model="claude-sonnet-5-5")
    assert result.success
    table = pipeline.table("extracted_entities")
    assert table.status.value_counts().to_dict() == {"ok": 312, "rejected": 7, "error": 1}  # the injection
    answered = table[table.status == "ok"]
    assert set(answered.model) == {"claude-sonnet-5-5"}
    assert answered.fallback.all()
    assert metadata_of(result, "extracted_entities")["fallback_answers"] > 0


def test_a_retired_model_fails_the_step_naming_it_instead_of_a_partition_of_error_rows(
    pipeline: PipelineHarness,
) -> None:
    """Regression (issue 14): a 404 for the model made every document an error row and the step green."""
    pipeline.simulator.control.configure(models=["claude-sonnet-5-5"])  # the configured Haiku is gone
    result = pipeline.materialize(assets=pipeline_assets[:2])
    assert not result.success
    (message,) = failure_messages(result)
    assert "does not know the model 'claude-haiku-5-5'" in message
    assert "LLM_PIPELINE_MODEL" in message
    assert not pipeline.path("extracted_entities").exists()
    assert pipeline.simulator.control.stats()["status_counts"]["404"] <= 16, "at most one per worker"


def test_a_retired_model_with_a_fallback_is_answered_by_the_fallback(pipeline: PipelineHarness) -> None:
    pipeline.simulator.control.configure(models=["claude-sonnet-5-5"])
    result = pipeline.materialize(assets=pipeline_assets[:2], fallback_model="claude-sonnet-5-5")
    assert result.success
    answered = pipeline.table("extracted_entities").query("status == 'ok'")
    assert set(answered.model) == {"claude-sonnet-5-5"}
    assert answered.fallback.all()
