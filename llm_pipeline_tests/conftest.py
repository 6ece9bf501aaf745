"""Shared fixtures. Fixture families live in `_fixtures/` and are registered here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "llm_pipeline_tests.fixtures.pipeline",
    "llm_pipeline_tests.fixtures.redis",
    "llm_pipeline_tests.fixtures.simulator",
]

#: Variables the project reads; a developer's shell must not leak them into tests.
_PROJECT_ENV_PREFIXES = ("ANTHROPIC_", "LLM_PIPELINE_", "DAGSTER_HOME")


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Each test starts without the project's env vars and leaves the environment as it found it."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(_PROJECT_ENV_PREFIXES):
            del os.environ[name]
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
