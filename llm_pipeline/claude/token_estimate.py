"""What a request is booked at before it is sent: a cheap, deliberately high guess of its input tokens.

The limiter books input tokens before the call and corrects the booking once `usage` arrives
(`Limiter.settle`); an over-estimate only holds room back until then, an under-estimate would
spend room the account does not have.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["estimate_input_tokens"]

_IMAGE_TOKENS = 1_600
_PARAMS_COUNTED = ("system", "messages", "tools", "tool_choice", "output_config")


def estimate_input_tokens(params: Mapping[str, Any]) -> int:
    """UTF-8 bytes of every string value (not keys) in the prompt-bearing parameters at 3 bytes per
    token (about 1.3x the usual 4 characters per token), plus a small per-request overhead; images
    count Anthropic's ~1,600-token cap instead of their base64 size."""
    text_bytes, images = 0, 0
    stack: list[Any] = [params.get(name) for name in _PARAMS_COUNTED]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            text_bytes += len(value.encode("utf-8"))
        elif isinstance(value, Mapping):
            if value.get("type") == "image":
                images += 1
                continue
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return math.ceil(text_bytes / 3) + 16 + images * _IMAGE_TOKENS
