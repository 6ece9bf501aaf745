"""The simulator's one token estimate, shared by count_tokens, usage and the rate limiter.

Real tokenizers are not available offline, and the exact figure does not matter; what matters is
that every part of the simulator agrees, so a client that books `count_tokens` against its
limiter sees the same number in `usage` and in the simulator's own buckets. The rule:

    text                 ceil(chars / 4)
    each message         + 4
    each tool            + 8 + ceil(len(name + description + json(input_schema)) / 4)
    output schema        + 8 + ceil(len(json(schema)) / 4)       (output_config.format)
    image                1,600;  base64 document ceil(len(data) / 32)
    tool_use / result    + 4 on top of their JSON input / content
    request              + 3

Pieces come out in the API's render order (tools, output format, system, messages) with their
`cache_control` markers, which is what the prompt cache needs to find breakpoints. The output
format's schema is part of the cached prefix: on the API a changed schema misses the cache, so it
is in the prefix's key, and `output_config` is a request parameter, not a content block that could
carry a marker. Where exactly it is rendered is not documented; here it comes right after the
tools, so a breakpoint on the system prompt covers it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PromptPiece",
    "estimate_input_tokens",
    "estimate_output_tokens",
    "prompt_pieces",
    "text_tokens",
]

CHARS_PER_TOKEN = 4
REQUEST_OVERHEAD = 3
MESSAGE_OVERHEAD = 4
TOOL_OVERHEAD = 8
FORMAT_OVERHEAD = 8
BLOCK_OVERHEAD = 4
IMAGE_TOKENS = 1_600
BASE64_CHARS_PER_TOKEN = 32


def text_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def _json_tokens(value: Any) -> int:
    return text_tokens(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


@dataclass(frozen=True, slots=True)
class PromptPiece:
    """One cacheable unit of the prompt: a tool, a system block or a message content block."""

    tokens: int
    content: Any
    cache_control: Mapping[str, Any] | None


def _block_tokens(block: Any) -> int:
    if isinstance(block, str):
        return text_tokens(block)
    if not isinstance(block, Mapping):
        return _json_tokens(block)
    kind = block.get("type")
    if kind == "text":
        return text_tokens(str(block.get("text", "")))
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        return _document_tokens(block)
    if kind == "tool_use":
        return BLOCK_OVERHEAD + text_tokens(str(block.get("name", ""))) + _json_tokens(block.get("input", {}))
    if kind == "tool_result":
        content = block.get("content", "")
        inner = (
            text_tokens(content) if isinstance(content, str) else sum(_block_tokens(b) for b in content or ())
        )
        return BLOCK_OVERHEAD + inner
    if kind == "thinking":
        return text_tokens(str(block.get("thinking", "")))
    return _json_tokens(block)


def _document_tokens(block: Mapping[str, Any]) -> int:
    source = block.get("source") or {}
    extra = text_tokens(str(block.get("title") or "")) + text_tokens(str(block.get("context") or ""))
    kind = source.get("type")
    if kind == "text":
        return extra + text_tokens(str(source.get("data", "")))
    if kind == "base64":
        return extra + -(-len(str(source.get("data", ""))) // BASE64_CHARS_PER_TOKEN)
    if kind == "content":
        content = source.get("content", "")
        if isinstance(content, str):
            return extra + text_tokens(content)
        return extra + sum(_block_tokens(b) for b in content)
    return extra + IMAGE_TOKENS


def _tool_tokens(tool: Mapping[str, Any]) -> int:
    text = str(tool.get("name", "")) + str(tool.get("description", ""))
    return TOOL_OVERHEAD + text_tokens(text) + _json_tokens(tool.get("input_schema", {}))


def _cache_control(block: Any) -> Mapping[str, Any] | None:
    return block.get("cache_control") if isinstance(block, Mapping) else None


def prompt_pieces(params: Mapping[str, Any]) -> list[PromptPiece]:
    """The prompt as cacheable pieces in render order: tools, output format, system, messages."""
    pieces = [PromptPiece(_tool_tokens(t), t, _cache_control(t)) for t in params.get("tools") or ()]
    output_format = _output_format(params)
    if output_format is not None:
        tokens = FORMAT_OVERHEAD + _json_tokens(output_format["schema"])
        pieces.append(PromptPiece(tokens, {"output_format": output_format}, None))
    system = params.get("system")
    if isinstance(system, str) and system:
        pieces.append(PromptPiece(text_tokens(system), system, None))
    elif isinstance(system, list):
        pieces.extend(PromptPiece(_block_tokens(b), b, _cache_control(b)) for b in system)
    for message in params.get("messages") or ():
        content = message.get("content", "") if isinstance(message, Mapping) else ""
        blocks = [content] if isinstance(content, str) else list(content)
        for i, block in enumerate(blocks):
            overhead = MESSAGE_OVERHEAD if i == 0 else 0
            pieces.append(PromptPiece(overhead + _block_tokens(block), block, _cache_control(block)))
    return pieces


def _output_format(params: Mapping[str, Any]) -> Mapping[str, Any] | None:
    output_config = params.get("output_config")
    fmt = output_config.get("format") if isinstance(output_config, Mapping) else None
    return fmt if isinstance(fmt, Mapping) and "schema" in fmt else None


def estimate_input_tokens(params: Mapping[str, Any], pieces: list[PromptPiece] | None = None) -> int:
    """Input tokens of a Messages request (also what count_tokens returns)."""
    if pieces is None:
        pieces = prompt_pieces(params)
    return REQUEST_OVERHEAD + sum(p.tokens for p in pieces)


def estimate_output_tokens(blocks: Iterable[Mapping[str, Any]]) -> int:
    """Output tokens of generated content blocks; never 0, as the real API counts at least one."""
    total = 0
    for block in blocks:
        if block.get("type") == "tool_use":
            total += BLOCK_OVERHEAD + _json_tokens(block.get("input", {}))
        else:
            total += text_tokens(str(block.get("text", "")))
    return max(total, 1)
