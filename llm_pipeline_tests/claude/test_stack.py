"""`open_client` builds everything on the running loop and closes it: reusable settings and runners
across event loops (Dagster runs each async step on its own loop), nothing bound at import."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from llm_pipeline.claude import ClaudeSettings, Runner, open_client
from llm_pipeline.simulator import Simulator
from llm_pipeline_tests.fixtures.claude_calls import request, settings


def test_one_settings_and_runner_serve_several_event_loops(simulator: Simulator, tmp_path) -> None:
    config = settings(simulator.base_url, state=str(tmp_path / "state"))
    runner = Runner(4)

    async def run_once(prefix: str) -> int:
        async with open_client(config) as client:
            results = await runner.run(client.call, [request(i, prefix=prefix) for i in range(10)])
        return sum(r.ok for r in results)

    assert asyncio.run(run_once("first")) == 10
    assert asyncio.run(run_once("second")) == 10, "nothing from the first loop leaked into the second"


async def test_closing_the_stack_closes_state_and_sdk(simulator: Simulator, tmp_path) -> None:
    config = settings(simulator.base_url, state=str(tmp_path / "state"))
    async with open_client(config) as client:
        assert (await client.call(request(1))).ok
        sdk = client._sdk
        state = client._state
    assert sdk.is_closed()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        await state.ledger.stats()


async def test_closes_even_when_the_body_fails(simulator: Simulator) -> None:
    seen = []

    async def failing_body() -> None:
        async with open_client(settings(simulator.base_url)) as client:
            seen.append(client._sdk)
            raise KeyError("boom")

    with pytest.raises(KeyError):
        await failing_body()
    assert seen[0].is_closed()


def test_settings_hide_the_key_and_validate() -> None:
    assert "secret-key" not in repr(ClaudeSettings(api_key="secret-key"))
    with pytest.raises(ValueError, match="rpm"):
        ClaudeSettings(rpm=0)
    with pytest.raises(ValueError, match="transport"):
        ClaudeSettings(transport="curl")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base_url", "endpoint"),
    [
        (None, "api.anthropic.com"),
        ("https://api.anthropic.com", "api.anthropic.com"),
        ("http://127.0.0.1:8787", "127.0.0.1"),
        ("http://127.0.0.1:40123/", "127.0.0.1"),
    ],
)
def test_state_is_kept_apart_per_endpoint_host(base_url: str | None, endpoint: str) -> None:
    assert ClaudeSettings(base_url=base_url).endpoint == endpoint
