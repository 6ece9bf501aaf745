"""The call stack's view of the prompt cache: prefix identity, warmth learned from usage, warm-up."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from llm_pipeline.claude.prompt_cache import PrefixWarmth, WarmUp, cache_prefix
from llm_pipeline.claude.token_estimate import estimate_input_tokens

MARK = {"type": "ephemeral"}
SCHEMA = {"format": {"type": "json_schema", "schema": {"type": "object"}}}
RULES = "Guidelines. " * 500


def params(doc: str = "Doc one.", *, model: str = "claude-haiku-5-5", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 64,
        "system": [{"type": "text", "text": RULES, "cache_control": MARK}],
        "messages": [{"role": "user", "content": doc}],
        "output_config": SCHEMA,
        **extra,
    }


def usage(read: int = 0, written: int = 0) -> Any:
    return SimpleNamespace(cache_read_input_tokens=read, cache_creation_input_tokens=written)


def test_requests_sharing_the_marked_prefix_share_its_key_and_nothing_else_does() -> None:
    first, second = cache_prefix(params("Doc one.")), cache_prefix(params("Another, longer document."))
    assert first is not None
    assert first == second
    assert cache_prefix(params(model="claude-sonnet-5-5")) != first
    assert cache_prefix(params(output_config={"format": {"type": "json_schema", "schema": {}}})) != first
    assert cache_prefix({**params(), "system": RULES}) is None  # no marker, no shared prefix
    assert (
        cache_prefix({**params(), "system": RULES, "cache_control": MARK}) is None
    )  # automatic: whole prompt


def test_the_prefix_estimate_is_the_limiters_estimate_of_those_parts() -> None:
    prefix = cache_prefix(params())
    assert prefix is not None
    whole = estimate_input_tokens(params())
    uncached = estimate_input_tokens({**params(), "system": None, "output_config": None})  # the document
    assert prefix.estimate == pytest.approx(whole - uncached, abs=2)
    assert prefix.estimate > len(RULES) / 3


def test_a_marker_on_a_message_block_takes_everything_before_it() -> None:
    shared = [{"type": "text", "text": "A long shared document. " * 200, "cache_control": MARK}]
    one = {
        **params(),
        "system": RULES,
        "messages": [{"role": "user", "content": [*shared, {"type": "text", "text": "Q1"}]}],
    }
    two = {
        **params(),
        "system": RULES,
        "messages": [{"role": "user", "content": [*shared, {"type": "text", "text": "Q2"}]}],
    }
    assert cache_prefix(one) == cache_prefix(two)
    assert cache_prefix({**one, "system": RULES + "!"}) != cache_prefix(one)


def test_booking_is_full_until_a_response_reads_the_prefix_and_full_again_when_one_does_not() -> None:
    warmth, prefix = PrefixWarmth(), cache_prefix(params())
    assert prefix is not None
    full = estimate_input_tokens(params())
    uncached = full - prefix.estimate
    steps = [
        (None, full),  # nothing known: never assumed warm
        (usage(written=4_000), full),  # the warm-up wrote it: not yet seen read
        (usage(read=4_000), uncached),  # read: warm, book what counts
        (usage(read=4_000), uncached),
        (usage(written=4_000), full),  # expired or evicted: written again, booked in full
        (usage(), full),  # not cached at all (below the model's minimum)
        (usage(read=4_000), uncached),
    ]
    for seen, booked in steps:
        if seen is not None:
            warmth.observe(prefix, seen)
        assert warmth.booking(prefix, full) == booked
    assert warmth.booking(None, full) == full


async def test_the_first_caller_writes_alone_and_the_rest_go_once_it_has_answered() -> None:
    warm_up, prefix = WarmUp(), cache_prefix(params())
    assert prefix is not None
    order: list[str] = []

    async def caller(name: str) -> None:
        writer = await warm_up.admit(prefix)
        order.append(f"{name}:{'write' if writer else 'read'}")

    tasks = [asyncio.create_task(caller(f"c{i}")) for i in range(4)]
    await asyncio.sleep(0)
    assert order == ["c0:write"]  # the others wait
    for _ in range(3):
        await asyncio.sleep(0)
    assert order == ["c0:write"]
    warm_up.opened(prefix)
    await asyncio.gather(*tasks)
    assert order == ["c0:write", "c1:read", "c2:read", "c3:read"]
    assert await warm_up.admit(prefix) is False  # open from now on


async def test_a_failed_writer_hands_the_write_to_the_next_caller() -> None:
    warm_up, prefix = WarmUp(), cache_prefix(params())
    assert prefix is not None
    assert await warm_up.admit(prefix) is True
    waiters = [asyncio.create_task(warm_up.admit(prefix)) for _ in range(3)]
    await asyncio.sleep(0)
    warm_up.abandoned(prefix)
    await asyncio.sleep(0)
    done = [t for t in waiters if t.done()]
    assert [t.result() for t in done] == [True]  # exactly one new writer; the others wait again
    warm_up.opened(prefix)
    results = await asyncio.gather(*waiters)
    assert sorted(results) == [False, False, True]
