"""Pins transport.read_message: the fast JSON validation gives the very Message the SDK's own parse
gives, and a body it rejects still parses the SDK's lenient way (nothing the SDK accepts is refused).

The SDK runs over httpx2's `MockTransport`: a fake at the SDK's HTTP boundary, not a patch of ours.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2

from llm_pipeline.claude.transport import rate_limit_headers, read_message

PARAMS: dict[str, Any] = {
    "model": "claude-haiku-5-5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}


def _body(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-5-5",
        "content": content,
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


def _sdk(body: dict[str, Any]) -> anthropic.AsyncAnthropic:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=body, headers={"request-id": "req_42"})

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    return anthropic.AsyncAnthropic(
        api_key="sk-test", base_url="http://sdk.test", http_client=http, max_retries=0
    )


async def test_fast_parse_equals_the_sdks_parse_and_returns_the_body() -> None:
    body = _body(
        [
            {"type": "text", "text": "Here you go."},
            {"type": "tool_use", "id": "toolu_1", "name": "extract", "input": {"topics": ["a", "b"]}},
        ]
    )
    sdk = _sdk(body)
    try:
        message, text = await read_message(await sdk.messages.with_raw_response.create(**PARAMS))
        reference = await sdk.messages.create(**PARAMS)
    finally:
        await sdk.close()
    assert message == reference
    assert message.model_dump() == reference.model_dump()
    assert message._request_id == reference._request_id == "req_42"
    assert text is not None
    assert json.loads(text) == body


async def test_a_body_the_validator_rejects_falls_back_to_the_sdks_lenient_parse() -> None:
    body = _body([{"type": "hologram", "frames": 3}])  # a block type newer than the pinned SDK
    sdk = _sdk(body)
    try:
        message, text = await read_message(await sdk.messages.with_raw_response.create(**PARAMS))
    finally:
        await sdk.close()
    assert text is None, "no body to store verbatim: the ledger serialises the message instead"
    assert message.id == "msg_01"
    assert message.usage.output_tokens == 7
    assert message._request_id == "req_42"


def test_rate_limit_headers_are_picked_in_one_pass_with_lower_case_names() -> None:
    headers = httpx2.Headers(
        [
            ("Content-Type", "application/json"),
            ("Anthropic-RateLimit-Requests-Remaining", "41"),
            ("anthropic-ratelimit-input-tokens-remaining", "12000"),
            ("request-id", "req_1"),
            ("anthropic-ratelimit-requests-reset", "2026-11-25T00:00:00Z"),
        ]
    )
    assert rate_limit_headers(headers) == {
        "anthropic-ratelimit-requests-remaining": "41",
        "anthropic-ratelimit-input-tokens-remaining": "12000",
        "anthropic-ratelimit-requests-reset": "2026-11-25T00:00:00Z",
    }
    assert rate_limit_headers(httpx2.Headers({"request-id": "req_2"})) == {}
