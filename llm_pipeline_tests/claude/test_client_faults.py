"""The client when the upstream misbehaves (issue 14): malformed 200s, a retired model, an outage
that ends, and a ledger entry that no longer validates. All against the simulator's switches."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from llm_pipeline.claude import CircuitOpen, ModelNotFound, Runner, ServerError, open_client
from llm_pipeline.claude.breaker import BreakerEvent
from llm_pipeline.simulator import ScheduledFault, Simulator
from llm_pipeline_tests.fixtures.claude_calls import FALLBACK, request, settings


@pytest.mark.parametrize("kind", ["truncated_body", "html_body", "unknown_block"])
async def test_a_malformed_200_is_retried_and_only_the_valid_answer_is_stored(
    simulator: Simulator, tmp_path, kind: str
) -> None:
    """Regression: a cut JSON body raised JSONDecodeError, an HTML page an AttributeError, and an
    unknown block was parsed leniently into the ledger, where it failed validation on every read."""
    simulator.control.set_faults(schedule=[ScheduledFault(kind, count=1)])
    config = settings(simulator.base_url, state=str(tmp_path))
    async with open_client(config) as client:
        result = await client.call(request(1))
    assert result.ok, result.error
    assert result.record.attempts == 2
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    (stored,) = conn.execute("SELECT message FROM ledger").fetchone()
    conn.close()
    assert "hologram" not in stored
    assert stored.startswith("{")
    async with open_client(config) as client:
        again = await client.call(request(1))
    assert again.record.cached, "the stored answer reads back"


async def test_malformed_200s_that_never_stop_become_an_error_row_not_a_crash(simulator: Simulator) -> None:
    simulator.control.set_faults(p_html_body=1.0)
    async with open_client(settings(simulator.base_url, max_attempts=3)) as client:
        result = await client.call(request(1))
    assert isinstance(result.error, ServerError)
    assert result.error.status_code == 200
    assert "not a valid Message" in str(result.error)
    assert result.record.attempts == 3
    assert simulator.control.stats()["successes"] == 3, "each was billed: the server answered"


async def test_a_stored_answer_that_no_longer_validates_is_skipped_and_fetched_again(
    simulator: Simulator, tmp_path
) -> None:
    config = settings(simulator.base_url, state=str(tmp_path))
    async with open_client(config) as client:
        assert (await client.call(request(1))).ok
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    conn.execute('UPDATE ledger SET message = \'{"type": "message", "content": 42}\'')
    conn.commit()
    conn.close()
    async with open_client(config) as client:
        result = await client.call(request(1))
        invalid = list(client.ledger.invalid)
    assert result.ok, "answered again, not a crash"
    assert not result.record.cached
    assert len(invalid) == 1
    async with open_client(config) as client:
        assert (await client.call(request(1))).record.cached, "the entry was overwritten with a valid one"


async def test_a_retired_model_goes_to_the_fallback_once_and_stays_there(simulator: Simulator) -> None:
    retired = "claude-2-retired"
    config = settings(simulator.base_url, fallback_model=FALLBACK, max_concurrency=4)
    requests = [request(i, model=retired) for i in range(12)]
    async with open_client(config) as client:
        results = await Runner(4).run(client.call, requests)
    assert all(r.ok and r.record.fallback and r.record.model == FALLBACK for r in results)
    stats = simulator.control.stats()
    assert stats["status_counts"].get("404", 0) <= 4, "after the first 404s, calls skip the retired model"
    assert stats["successes"] == 12


async def test_a_retired_model_without_a_fallback_is_systemic_and_names_the_model(
    simulator: Simulator,
) -> None:
    async with open_client(settings(simulator.base_url)) as client:
        result = await client.call(request(1, model="claude-2-retired"))
    assert isinstance(result.error, ModelNotFound)
    assert result.error.systemic
    assert result.error.model == "claude-2-retired"
    assert "'claude-2-retired' does not exist or is retired" in str(result.error)
    assert result.record.attempts == 1, "a 404 is not retried"


async def test_after_an_outage_the_next_run_probes_once_and_pays_each_request_once(
    simulator: Simulator, tmp_path
) -> None:
    """Regression (issue 14): a probe claimed in half-open was cancelled with the failing run and
    the breaker stayed half-open ('a probe is in flight') for every later run."""
    config = settings(
        simulator.base_url,
        state=str(tmp_path),
        breaker_threshold=3,
        breaker_open_s=1.0,
        max_attempts=3,
        max_concurrency=8,
    )
    simulator.control.set_faults(outage=500)
    async with open_client(config) as client:
        failed = await Runner(8).run(client.call, [request(i) for i in range(16)], ordered=False)
    assert any(isinstance(r.error, CircuitOpen) for r in failed)
    assert not any(r.ok for r in failed)
    simulator.control.clear_faults()
    before = simulator.control.stats()["attempts"]
    await asyncio.sleep(config.breaker_open_s)  # the open interval passes
    events: list[object] = []
    async with open_client(config, on_event=events.append) as client:
        results = await Runner(8).run(client.call, [request(i) for i in range(16)], ordered=False)
    assert all(r.ok for r in results), [str(r.error) for r in results if not r.ok]
    stats = simulator.control.stats()
    assert stats["attempts"] - before == 16, "one call per request: the probe, then the others after it"
    assert stats["max_successes_per_request"] == 1
    transitions = [e.transition for e in events if isinstance(e, BreakerEvent)]
    assert transitions == ["closed"], "one probe closed it"
