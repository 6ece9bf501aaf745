"""`stream: true`: the finished Message replayed as the API's server-sent events.

Event order as the real API sends it: `message_start` (empty content, `stop_reason` null),
per block `content_block_start` / `content_block_delta`* / `content_block_stop` (text as
`text_delta`, tool input as `input_json_delta` fragments), a `ping`, then `message_delta`
(stop reason and final output tokens) and `message_stop`. Per-token latency is spread over the
deltas, so a streamed answer arrives at the same pace a non-streamed one is delayed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

from llm_pipeline.simulator.tokens import CHARS_PER_TOKEN

__all__ = ["sse_events", "stream_message"]

#: Characters per delta event (about 4 tokens).
CHUNK_CHARS = 16


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _chunks(text: str) -> Iterator[str]:
    for i in range(0, len(text), CHUNK_CHARS):
        yield text[i : i + CHUNK_CHARS]


def sse_events(message: Mapping[str, Any]) -> Iterator[tuple[bytes, int]]:
    """(event bytes, output tokens it carries) for a complete Message."""
    usage = dict(message["usage"])
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "stop_details": None}
    start["usage"] = {**usage, "output_tokens": 1}
    yield _event("message_start", {"type": "message_start", "message": start}), 0
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            opening = {**block, "input": {}}
            delta_type, key = "input_json_delta", "partial_json"
            body = json.dumps(block["input"], ensure_ascii=False)
        else:
            opening = {**block, "text": ""}
            delta_type, key = "text_delta", "text"
            body = block.get("text", "")
        yield (
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            ),
            0,
        )
        for piece in _chunks(body):
            delta = {"type": "content_block_delta", "index": index, "delta": {"type": delta_type, key: piece}}
            yield _event("content_block_delta", delta), max(1, len(piece) // CHARS_PER_TOKEN)
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index}), 0
    yield _event("ping", {"type": "ping"}), 0
    delta = {
        "type": "message_delta",
        "delta": {
            "stop_reason": message["stop_reason"],
            "stop_sequence": message.get("stop_sequence"),
            "stop_details": message.get("stop_details"),
        },
        "usage": {"output_tokens": usage["output_tokens"]},
    }
    yield _event("message_delta", delta), 0
    yield _event("message_stop", {"type": "message_stop"}), 0


async def stream_message(
    request: web.Request, message: Mapping[str, Any], headers: Mapping[str, str], per_token_s: float
) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={**headers, "cache-control": "no-cache"})
    response.content_type = "text/event-stream"
    await response.prepare(request)
    for data, tokens in sse_events(message):
        if per_token_s and tokens:
            await asyncio.sleep(per_token_s * tokens)
        await response.write(data)
    await response.write_eof()
    return response
