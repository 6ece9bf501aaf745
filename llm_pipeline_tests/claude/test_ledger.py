"""The ledger: what the fingerprint covers, round trips of real `Message`s, the fallback lookup,
`refresh`, `stats` and `prune` (memory and SQLite stores; Redis is covered in test_claude_state)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from anthropic.types import Message

from llm_pipeline.claude.ledger import Ledger, fingerprint
from llm_pipeline.claude.state import StateBackend, open_state
from llm_pipeline.claude.types import Request
from llm_pipeline_tests.fixtures.fake_clock import FakeClock

T0 = 1_000_000.0
MARK_1H = {"type": "ephemeral", "ttl": "1h"}
BASE = {
    "model": "claude-haiku-5-5",
    "max_tokens": 256,
    "system": "Extract entities.",
    "messages": [{"role": "user", "content": "Acme Corp hired Ada."}],
}


def message(text: str = "done", model: str = "claude-haiku-5-5") -> Message:
    return Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 11, "output_tokens": 7},
        }
    )


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"metadata": {"user_id": "u1"}}, True),
        ({"stream": False}, True),
        ({"service_tier": "auto"}, True),
        ({"timeout": 30}, True),
        ({"model": "claude-sonnet-5-5"}, False),
        ({"max_tokens": 257}, False),
        ({"temperature": 0.0}, False),
        ({"top_p": 0.9}, False),
        ({"system": "Extract entities!"}, False),
        ({"messages": [{"role": "user", "content": "Acme Corp hired Bob."}]}, False),
        ({"tools": [{"name": "t", "input_schema": {"type": "object"}}]}, False),
        ({"tool_choice": {"type": "any"}}, False),
        ({"output_config": {"format": {"type": "json_schema", "schema": {}}}}, False),
        ({"stop_sequences": ["END"]}, False),
        # cache breakpoints change the price, not the answer (issue 17)
        ({"cache_control": {"type": "ephemeral"}}, True),
        (
            {
                "system": [
                    {"type": "text", "text": "Extract entities.", "cache_control": {"type": "ephemeral"}}
                ]
            },
            True,
        ),
        (
            {"system": [{"type": "text", "text": "Extract entities.", "cache_control": MARK_1H}]},
            True,
        ),
        ({"system": [{"type": "text", "text": "Extract entities."}]}, True),
        ({"system": [{"type": "text", "text": "Extract"}, {"type": "text", "text": " entities."}]}, False),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "Acme Corp hired Ada.", "cache_control": MARK_1H}
                        ],
                    }
                ]
            },
            False,  # a list of blocks is not the string (only the system prompt is normalised)
        ),
    ],
)
def test_fingerprint_covers_what_determines_the_answer(change: dict, same: bool) -> None:
    assert (fingerprint({**BASE, **change}) == fingerprint(BASE)) is same


def test_marked_messages_share_the_unmarked_fingerprint() -> None:
    blocks = [{"type": "text", "text": "Acme Corp hired Ada."}]
    unmarked = {**BASE, "messages": [{"role": "user", "content": blocks}]}
    marked = {**BASE, "messages": [{"role": "user", "content": [{**blocks[0], "cache_control": MARK_1H}]}]}
    tools = [{"name": "t", "input_schema": {"type": "object"}}]
    assert fingerprint(marked) == fingerprint(unmarked)
    assert fingerprint({**BASE, "tools": [{**tools[0], "cache_control": MARK_1H}]}) == fingerprint(
        {**BASE, "tools": tools}
    )


def test_fingerprint_is_sha256_of_canonical_json() -> None:
    """Pinned: changing the canonical form would orphan every answer already stored."""
    params = {"text": "é", "model": "m", "max_tokens": 5, "metadata": {"user_id": "u"}}
    canonical = '{"max_tokens":5,"model":"m","text":"é"}'
    assert fingerprint(params) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert fingerprint(dict(reversed(list(BASE.items())))) == fingerprint(BASE)


@pytest.fixture(params=["memory", "sqlite"])
async def state(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[StateBackend]:
    clock = FakeClock(T0)
    backend = open_state(None if request.param == "memory" else str(tmp_path / "s"), clock.now)
    backend.clock = clock  # type: ignore[attr-defined]
    try:
        yield backend
    finally:
        await backend.aclose()


async def test_put_then_get_round_trips_the_message(state: StateBackend) -> None:
    ledger = Ledger(state.ledger, clock=state.clock)  # type: ignore[attr-defined]
    request = Request(key="doc-1", params=BASE)
    assert await ledger.get(request) is None
    await ledger.put(request, message("Acme"))
    hit = await ledger.get(Request(key="other-key", params=dict(BASE)))
    assert hit is not None
    assert hit.message == message("Acme")
    assert (hit.model, hit.key, hit.created_at) == ("claude-haiku-5-5", "doc-1", T0)


async def test_lookup_also_finds_the_fallback_models_answer(state: StateBackend) -> None:
    ledger = Ledger(state.ledger, clock=state.clock)  # type: ignore[attr-defined]
    request = Request(key="doc-1", params=BASE)
    await ledger.put(request.with_model("claude-sonnet-5-5"), message("fb", model="claude-sonnet-5-5"))
    assert await ledger.get(request) is None
    hit = await ledger.get(request, also_models=["claude-sonnet-5-5"])
    assert hit is not None
    assert hit.model == "claude-sonnet-5-5"


async def test_refresh_skips_lookups_but_still_writes(state: StateBackend) -> None:
    clock: FakeClock = state.clock  # type: ignore[attr-defined]
    request = Request(key="doc-1", params=BASE)
    await Ledger(state.ledger, clock=clock).put(request, message("old"))
    fresh = Ledger(state.ledger, clock=clock, refresh=True)
    assert await fresh.get(request) is None
    await fresh.put(request, message("new"))
    hit = await Ledger(state.ledger, clock=clock).get(request)
    assert hit is not None
    assert hit.message.content[0].text == "new"  # type: ignore[union-attr]


async def test_stats_and_prune_older_than(state: StateBackend) -> None:
    clock: FakeClock = state.clock  # type: ignore[attr-defined]
    ledger = Ledger(state.ledger, clock=clock)
    await ledger.put(Request(key="a", params=BASE), message())
    await clock.advance(3 * 86_400)
    await ledger.put(Request(key="b", params={**BASE, "max_tokens": 1}), message())
    stats = await ledger.stats()
    assert (stats.entries, stats.input_tokens, stats.output_tokens) == (2, 22, 14)
    assert (stats.oldest, stats.newest) == (T0, T0 + 3 * 86_400)
    assert await ledger.prune(older_than=timedelta(days=2)) == 1
    assert (await ledger.stats()).entries == 1
    assert await ledger.get(Request(key="a", params=BASE)) is None


async def test_sqlite_ledger_is_durable_across_reopen(tmp_path) -> None:
    clock = FakeClock(T0)
    request = Request(key="doc-1", params=BASE)
    first = open_state(str(tmp_path), clock.now)
    await Ledger(first.ledger, clock=clock).put(request, message("kept"))
    await first.aclose()
    second = open_state(str(tmp_path), clock.now)
    try:
        hit = await Ledger(second.ledger, clock=clock).get(request)
        assert hit is not None
        assert (tmp_path / "ledger.sqlite").exists()
    finally:
        await second.aclose()


async def test_endpoints_never_share_answers(state: StateBackend) -> None:
    """Regression guard: a simulator demo and a real run sharing one state dir must not share answers."""
    clock: FakeClock = state.clock  # type: ignore[attr-defined]
    request = Request(key="doc-1", params=BASE)
    await Ledger(state.ledger, clock=clock, namespace="127.0.0.1").put(request, message("simulated"))
    assert await Ledger(state.ledger, clock=clock, namespace="api.anthropic.com").get(request) is None
    assert await Ledger(state.ledger, clock=clock, namespace="127.0.0.1").get(request) is not None


def _requests(n: int) -> list[Request]:
    return [Request(key=f"doc-{i}", params={**BASE, "system": f"Extract entities {i}."}) for i in range(n)]


async def test_sqlite_puts_of_one_loop_pass_share_one_commit_and_are_durable_on_return(tmp_path) -> None:
    """Group commit: 50 concurrent puts, one transaction; each put returns only once another
    connection (another process) can read its entry."""
    clock = FakeClock(T0)
    state = open_state(str(tmp_path), clock.now)
    reader = open_state(str(tmp_path), clock.now)
    ledger = Ledger(state.ledger, clock=clock)
    requests = _requests(50)
    seen_on_return: list[bool] = []

    async def put_then_look(request: Request) -> None:
        await ledger.put(request, message(request.key))
        seen_on_return.append(await Ledger(reader.ledger, clock=clock).get(request) is not None)

    try:
        await asyncio.gather(*(put_then_look(r) for r in requests))
        assert seen_on_return == [True] * 50
        assert state.ledger.commits == 1  # type: ignore[attr-defined]
    finally:
        await state.aclose()
        await reader.aclose()


async def test_sqlite_put_cancelled_while_committing_is_still_written(tmp_path) -> None:
    clock = FakeClock(T0)
    state = open_state(str(tmp_path), clock.now)
    request = _requests(1)[0]
    try:
        task = asyncio.create_task(Ledger(state.ledger, clock=clock).put(request, message("paid for")))
        await asyncio.sleep(0)  # queued, commit scheduled
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        hit = await Ledger(state.ledger, clock=clock).get(request)
        assert hit is not None
        assert hit.message.content[0].text == "paid for"  # type: ignore[union-attr]
    finally:
        await state.aclose()


async def test_sqlite_close_commits_what_is_still_queued(tmp_path) -> None:
    clock = FakeClock(T0)
    state = open_state(str(tmp_path), clock.now)
    requests = _requests(3)
    tasks = [asyncio.create_task(Ledger(state.ledger, clock=clock).put(r, message())) for r in requests]
    await asyncio.sleep(0)  # every put is queued; the scheduled commit has not run yet
    await state.aclose()
    await asyncio.gather(*tasks)
    again = open_state(str(tmp_path), clock.now)
    try:
        assert (await again.ledger.stats()).entries == 3
    finally:
        await again.aclose()
