"""Build `anthropic.types.Message` answers for the parsing tests (plain data, no API)."""

from __future__ import annotations

import json
from typing import Any

from anthropic.types import Message


def make_message(
    answer: Any = None,
    *,
    text: str | None = None,
    stop_reason: str = "end_turn",
    content: list[dict[str, Any]] | None = None,
    output_tokens: int = 42,
    stop_details: dict[str, Any] | None = None,
) -> Message:
    """An answer whose single text block is `text`, or `answer` dumped as JSON."""
    if content is None:
        body = text if text is not None else json.dumps(answer, ensure_ascii=False)
        content = [{"type": "text", "text": body}]
    return Message.model_validate(
        {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": content,
            "stop_reason": stop_reason,
            "stop_details": stop_details,
            "usage": {"input_tokens": 10, "output_tokens": output_tokens},
        }
    )
