"""`setting`: config, else the environment variable, else the default, with one kind of error."""

from __future__ import annotations

import os

import pytest

from llm_pipeline.settings import SettingError, integer, labels, number, setting, word


@pytest.mark.parametrize(
    ("configured", "env", "parse", "expected"),
    [
        (None, None, integer, "default"),
        (None, "  ", integer, "default"),  # blank counts as unset
        (None, " 42 ", integer, 42),
        (7, "42", integer, 7),  # config wins
        ("", "4.5", number, 4.5),  # blank config counts as unset too
        (" Batch ", "realtime", word, "batch"),  # config text is parsed like env text
        (None, " a , b,c ", labels, ["a", "b", "c"]),
        (None, "a,,b", labels, ["a", "", "b"]),  # kept, so validation can name it
    ],
)
def test_config_else_env_else_default(
    configured: object, env: str | None, parse: object, expected: object
) -> None:
    if env is not None:
        os.environ["LLM_PIPELINE_THING"] = env
    assert setting(configured, "LLM_PIPELINE_THING", parse, "default") == expected


@pytest.mark.parametrize(
    ("configured", "env", "parse", "message"),
    [
        (None, "fast", integer, "LLM_PIPELINE_THING='fast' is not an integer"),
        (None, "2.5", integer, "LLM_PIPELINE_THING='2.5' is not an integer"),
        (None, "soon", number, "LLM_PIPELINE_THING='soon' is not a number"),
        ("many", None, integer, r"LLM_PIPELINE_THING \(resource config\)='many' is not an integer"),
    ],
)
def test_a_value_that_does_not_parse_names_its_source(
    configured: object, env: str | None, parse: object, message: str
) -> None:
    if env is not None:
        os.environ["LLM_PIPELINE_THING"] = env
    with pytest.raises(SettingError, match=message):
        setting(configured, "LLM_PIPELINE_THING", parse, None)


def test_the_environment_is_read_when_asked_not_before() -> None:
    assert setting(None, "LLM_PIPELINE_THING", integer, None) is None
    os.environ["LLM_PIPELINE_THING"] = "3"
    assert setting(None, "LLM_PIPELINE_THING", integer, None) == 3
