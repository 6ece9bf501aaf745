"""The client and the prompt cache against the simulator (issue 17): the warm-up lets the first call
write the shared prefix alone, and the limiter books only what counts once the prefix is warm.

The simulator makes an entry readable only once the response that wrote it has started, so a call
whose usage shows a cache read was sent after the writer's response had started: "one write, then
only reads" is the server's proof that the warm-up call went first and alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llm_pipeline.claude import CallRecord, Request, Runner, open_client
from llm_pipeline.claude.prompt_cache import cache_prefix
from llm_pipeline.claude.token_estimate import estimate_input_tokens
from llm_pipeline.simulator import Latency, ScheduledFault, Simulator
from llm_pipeline_tests.fixtures.claude_calls import FALLBACK, MODEL, settings
from llm_pipeline_tests.fixtures.fake_clock import FakeClock

RULES = "Shared guidelines for every document of the step. " * 120  # ~1,500 simulator tokens


def cached_request(i: int, *, rules: str = RULES, model: str = MODEL) -> Request:
    return Request(
        key=f"doc-{i}",
        params={
            "model": model,
            "max_tokens": 64,
            "system": [{"type": "text", "text": rules, "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": f'<document id="doc-{i}">Acme Corp report {i}.</document>'}
            ],
        },
    )


async def _run(
    simulator: Simulator, requests: list[Request], concurrency: int, *, paced: bool = False, **overrides: Any
) -> list[CallRecord]:
    """Run `requests` through a Runner of `concurrency` workers (`paced`: gated on the client's
    in-flight bound, as the pipeline runs them); every call must succeed, within 60 s."""
    records: list[CallRecord] = []
    async with open_client(settings(simulator.base_url, **overrides), on_record=records.append) as client:
        runner = Runner(concurrency, in_flight=client.in_flight if paced else None)
        async with asyncio.timeout(60):
            results = [r async for r in runner.map(client.call, requests, ordered=False)]
    assert all(result.ok for result in results), [r.error for r in results if not r.ok]
    return records


async def test_the_first_call_writes_the_prefix_alone_then_the_rest_read_it(simulator: Simulator) -> None:
    """Thirty-two parallel first calls would all write (the entry is readable only once the writer's
    response has started); with the warm-up, one writes and every later call reads."""
    simulator.control.configure(latency=Latency(median_s=0.2))
    records = await _run(simulator, [cached_request(i) for i in range(32)], concurrency=32)
    stats = simulator.control.stats()
    assert (stats["cache_writes"], stats["cache_reads"]) == (1, 31)
    (writer,) = [r for r in records if r.cache_creation_input_tokens]
    assert all(
        r.cache_read_input_tokens == writer.cache_creation_input_tokens for r in records if r is not writer
    )


@pytest.mark.parametrize("paced", [False, True], ids=["runner", "runner gated on in_flight"])
async def test_a_failed_writer_hands_the_write_to_the_next_call(simulator: Simulator, paced: bool) -> None:
    """The warm-up's first request meets a 500: the gate does not stay shut, the next caller writes."""
    simulator.control.configure(latency=Latency(median_s=0.1))
    simulator.control.set_faults(schedule=[ScheduledFault("500", count=1)])
    records = await _run(simulator, [cached_request(i) for i in range(8)], concurrency=8, paced=paced)
    stats = simulator.control.stats()
    assert (stats["cache_writes"], stats["cache_reads"]) == (1, 7)
    assert sum(r.attempts for r in records) == 9  # the writer's first attempt failed and was retried


async def test_calls_without_a_shared_prefix_do_not_wait(simulator: Simulator) -> None:
    simulator.control.configure(latency=Latency(median_s=0.3))
    requests = [cached_request(i, rules=f"Rules of document {i}. " * 300) for i in range(8)]
    await _run(simulator, requests, concurrency=8)
    stats = simulator.control.stats()
    assert stats["max_in_flight"] == 8  # eight prefixes, eight writers at once
    assert stats["cache_writes"] == 8


async def test_two_prefixes_and_a_fallback_model_warm_up_without_deadlock(simulator: Simulator) -> None:
    """Two steps' prefixes interleaved, on a retired model whose calls go to the fallback, through
    the runner's in-flight gate: every call ends, and each prefix is written once, on the fallback."""
    simulator.control.configure(latency=Latency(median_s=0.1))
    retired = "claude-2-retired"
    requests = [
        cached_request(i, rules=RULES if i % 2 else "Other step's rules. " * 400, model=retired)
        for i in range(24)
    ]
    records = await _run(simulator, requests, concurrency=16, paced=True, fallback_model=FALLBACK)
    assert all(r.fallback and r.model == FALLBACK for r in records)
    stats = simulator.control.stats()
    assert (stats["cache_writes"], stats["cache_reads"]) == (2, 22)


async def test_the_limiter_books_less_once_warm_and_in_full_again_after_the_entry_is_evicted(
    simulator: Simulator,
) -> None:
    full = estimate_input_tokens(cached_request(0).params)
    prefix = cache_prefix(cached_request(0).params)
    assert prefix is not None
    uncached = full - prefix.estimate
    booked: list[int] = []
    async with open_client(settings(simulator.base_url), clock=FakeClock()) as client:
        for i in range(6):
            if i == 3:
                simulator.control.evict_prompt_cache()  # expired or evicted before its TTL
            result = await client.call(cached_request(i))
            assert result.ok
            booked.append(result.record.booked_input_tokens)
    # 0 writes (cold), 1 reads (still booked in full: not yet seen read), 2 warm, 3 finds the entry
    # gone and writes it again, 4 is booked in full until a read is seen, 5 warm again
    assert booked == [full, full, uncached, uncached, full, uncached]
    assert uncached < full / 10
    stats = simulator.control.stats()
    assert (stats["cache_writes"], stats["cache_reads"]) == (2, 4)


async def test_a_ledger_hit_carries_the_cache_tokens_of_the_answer_it_reuses(
    simulator: Simulator, tmp_path
) -> None:
    """Regression: a run taking another run's answers from the ledger wrote rows with the answer's
    input tokens but no cache reads or writes, so two runs of one day wrote different tables."""
    config = settings(simulator.base_url, state=str(tmp_path / "state"))
    paid: list[CallRecord] = []
    reused: list[CallRecord] = []
    async with open_client(config, on_record=paid.append) as client:
        for i in range(2):
            await client.call(cached_request(i))
    async with open_client(config, on_record=reused.append) as client:
        for i in range(2):
            await client.call(cached_request(i))
    assert [r.cached for r in reused] == [True, True]
    tokens = [(r.input_tokens, r.cache_creation_input_tokens, r.cache_read_input_tokens) for r in paid]
    assert [
        (r.input_tokens, r.cache_creation_input_tokens, r.cache_read_input_tokens) for r in reused
    ] == tokens
    assert tokens[0][1] > 0, "the first call wrote the prefix"
    assert tokens[1][2] > 0, "the second read it"
    assert [r.cost_usd for r in reused] == [0.0, 0.0]
