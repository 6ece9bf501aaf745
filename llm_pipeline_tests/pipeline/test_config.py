"""PipelineConfig: config wins over env, env over defaults, env read when a run asks."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_pipeline.pipeline.config import PipelineConfig, PipelineSettings
from llm_pipeline.settings import resolve_data_dir


def test_defaults_without_config_or_env() -> None:
    settings = PipelineConfig().settings()
    assert settings == PipelineSettings(
        taxonomy=("technical", "business", "research", "other"),
        max_error_rate=0.05,
        max_doc_chars=20_000,
        data_dir=Path("data"),
        entities_max_tokens=1024,
        classification_max_tokens=512,
        report_max_tokens=1500,
    )


def test_env_is_read_when_settings_are_asked_for_not_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    config = PipelineConfig()
    monkeypatch.setenv("LLM_PIPELINE_TAXONOMY", " news , sports,other ")
    monkeypatch.setenv("LLM_PIPELINE_MAX_ERROR_RATE", "0.2")
    monkeypatch.setenv("LLM_PIPELINE_MAX_DOC_CHARS", "500")
    monkeypatch.setenv("LLM_PIPELINE_DATA_DIR", "/srv/llm")
    settings = config.settings()
    assert settings.taxonomy == ("news", "sports", "other")
    assert (settings.max_error_rate, settings.max_doc_chars, settings.data_dir) == (
        0.2,
        500,
        Path("/srv/llm"),
    )


def test_config_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "LLM_PIPELINE_TAXONOMY": "x,y",
        "LLM_PIPELINE_MAX_ERROR_RATE": "0.2",
        "LLM_PIPELINE_MAX_DOC_CHARS": "500",
        "LLM_PIPELINE_DATA_DIR": "/from/env",
    }.items():
        monkeypatch.setenv(name, value)
    settings = PipelineConfig(
        taxonomy=["a", "b"], max_error_rate=0.0, max_doc_chars=9, data_dir="/cfg"
    ).settings()
    assert (settings.taxonomy, settings.max_error_rate, settings.max_doc_chars) == (("a", "b"), 0.0, 9)
    assert settings.data_dir == Path("/cfg")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LLM_PIPELINE_MAX_ERROR_RATE": "five percent"},
            "LLM_PIPELINE_MAX_ERROR_RATE='five percent' is not a number",
        ),
        ({"LLM_PIPELINE_MAX_DOC_CHARS": "2.5"}, "LLM_PIPELINE_MAX_DOC_CHARS='2.5' is not an integer"),
        ({"LLM_PIPELINE_MAX_ERROR_RATE": "1.5"}, "max_error_rate must be between 0 and 1"),
        ({"LLM_PIPELINE_MAX_DOC_CHARS": "0"}, "max_doc_chars must be positive"),
        ({"LLM_PIPELINE_TAXONOMY": "a,,b"}, "taxonomy must be distinct non-empty labels"),
        ({"LLM_PIPELINE_TAXONOMY": "a,a"}, "taxonomy must be distinct"),
    ],
)
def test_bad_env_values_are_named(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        PipelineConfig().settings()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"taxonomy": []}, "taxonomy must be"),
        ({"max_error_rate": -0.1}, "max_error_rate must be"),
        ({"entities_max_tokens": 0}, "entities_max_tokens must be positive"),
        ({"report_max_tokens": -1}, "report_max_tokens must be positive"),
    ],
)
def test_bad_config_values_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PipelineConfig(**kwargs).settings()


def test_blank_env_values_fall_back_to_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PIPELINE_MAX_ERROR_RATE", "  ")
    monkeypatch.setenv("LLM_PIPELINE_TAXONOMY", "")
    settings = PipelineConfig().settings()
    assert (settings.max_error_rate, settings.taxonomy[0]) == (0.05, "technical")


def test_raw_path_is_under_the_data_dir() -> None:
    assert PipelineConfig(data_dir="/d").settings().raw_path("2026-11-20") == Path("/d/raw/2026-11-20.jsonl")


@pytest.mark.parametrize(
    ("configured", "env", "expected"),
    [(None, None, "data"), (None, "/env", "/env"), ("/cfg", "/env", "/cfg"), (None, "", "data")],
)
def test_resolve_data_dir(
    monkeypatch: pytest.MonkeyPatch, configured: str | None, env: str | None, expected: str
) -> None:
    if env is not None:
        monkeypatch.setenv("LLM_PIPELINE_DATA_DIR", env)
    assert resolve_data_dir(configured) == Path(expected)
