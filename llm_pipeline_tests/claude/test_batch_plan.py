"""The pure rules of batch mode, pinned as tables: custom ids, splitting, poll backoff, result triage."""

from __future__ import annotations

import json
import re

import pytest

from llm_pipeline.claude.batch_plan import ENVELOPE_BYTES, Chunker, custom_id_for, next_poll_delay, triage
from llm_pipeline.claude.ledger import fingerprint
from llm_pipeline.claude.types import Request

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # the API's pattern (ANTHROPIC_FACTS §3)


def req(i: int, text: str = "x") -> Request:
    return Request(key=f"doc {i}/ü", params={"model": "m", "max_tokens": 5, "messages": [text, i]})


def key(r: Request, namespace: str = "api.anthropic.com") -> str:
    return f"{namespace}:{fingerprint(r.params)}"


@pytest.mark.parametrize("namespace", ["api.anthropic.com", "127.0.0.1", "::1"])
def test_custom_id_is_the_fingerprint_and_matches_the_api_pattern(namespace: str) -> None:
    custom_id = custom_id_for(key(req(1), namespace))
    assert custom_id == fingerprint(req(1).params)
    assert CUSTOM_ID.match(custom_id)


@pytest.mark.parametrize(
    ("previous", "cap", "expected"),
    [(30.0, 300.0, 45.0), (200.0, 300.0, 300.0), (300.0, 300.0, 300.0), (0.04, 0.09, 0.06)],
)
def test_next_poll_delay_grows_by_half_up_to_the_cap(previous: float, cap: float, expected: float) -> None:
    assert next_poll_delay(previous, cap) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("result", "error", "verdict"),
    [
        ("succeeded", None, "store"),
        ("expired", None, "retry"),
        ("errored", "api_error", "retry"),
        ("errored", "overloaded_error", "retry"),
        ("errored", "rate_limit_error", "retry"),
        ("errored", "timeout_error", "retry"),
        ("errored", "invalid_request_error", "give_up"),
        ("errored", "not_found_error", "give_up"),
        ("errored", "authentication_error", "give_up"),
        ("canceled", None, "canceled"),
    ],
)
def test_triage_of_result_lines(result: str, error: str | None, verdict: str) -> None:
    assert triage(result, error) == verdict


def test_chunker_splits_by_count_in_arrival_order() -> None:
    chunker = Chunker(max_requests=2, max_bytes=10**6)
    closed = [chunker.add(r, key(r)) for r in (req(i) for i in range(5))]
    full = [c for c in closed if c is not None]
    last = chunker.flush()
    assert last is not None
    assert [[item.key for item in c.items] for c in [*full, last]] == [
        ["doc 0/ü", "doc 1/ü"],
        ["doc 2/ü", "doc 3/ü"],
        ["doc 4/ü"],
    ]
    assert chunker.flush() is None
    assert full[0].payload[0] == {"custom_id": fingerprint(req(0).params), "params": dict(req(0).params)}


def test_chunker_splits_by_size_counting_the_json_and_the_envelope() -> None:
    one = len(json.dumps({"custom_id": "f" * 64, "params": dict(req(0).params)}).encode()) + 1
    chunker = Chunker(max_requests=100, max_bytes=ENVELOPE_BYTES + 3 * one)
    closed = [c for c in (chunker.add(r, key(r)) for r in (req(i) for i in range(7))) if c is not None]
    assert [len(c) for c in closed] == [3, 3]
    assert all(c.size_bytes == ENVELOPE_BYTES + 3 * one for c in closed)
    assert len(chunker.flush() or []) == 1


def test_a_request_larger_than_a_batch_is_set_aside() -> None:
    chunker = Chunker(max_requests=100, max_bytes=ENVELOPE_BYTES + 200)
    big = req(1, text="y" * 500)
    assert chunker.add(big, key(big)) is None
    assert chunker.add(req(2), key(req(2))) is None
    assert chunker.too_large == [key(big)]
    rest = chunker.flush()
    assert rest is not None
    assert [item.key for item in rest.items] == ["doc 2/ü"]
