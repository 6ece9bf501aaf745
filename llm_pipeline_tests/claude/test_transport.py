"""Pins transport.read_message: the fast JSON validation gives the very Message the SDK's own parse
gives, and a 200 whose body it rejects is a retryable malformed response, never a lenient parse.

The SDK runs over httpx2's `MockTransport`: a fake at the SDK's HTTP boundary, not a patch of ours.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import httpx2
import pytest

from llm_pipeline.claude.errors import ServerError
from llm_pipeline.claude.sdk_errors import map_sdk_errors
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


async def test_a_body_the_validator_rejects_is_a_retryable_server_error_not_a_lenient_parse() -> None:
    """Regression (issue 14): a lenient parse let a block type the SDK does not know into the ledger,
    where it failed validation on every later read."""
    body = _body([{"type": "hologram", "frames": 3}])  # a block type newer than the pinned SDK
    sdk = _sdk(body)
    try:
        raw = await sdk.messages.with_raw_response.create(**PARAMS)
        with pytest.raises(ServerError) as caught, map_sdk_errors(time.time):
            await read_message(raw)
    finally:
        await sdk.close()
    assert caught.value.status_code == 200
    assert caught.value.request_id == "req_42"
    assert "not a valid Message" in caught.value.message


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
