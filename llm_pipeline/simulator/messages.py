"""Messages requests in, Message objects out: validation like the real API, and the response shape.

Validation rejects what the real API rejects with the same status and error type (400
`invalid_request_error`, 404 `not_found_error` for an unknown model), so a pipeline bug shows up
against the simulator the way it would in production. `fingerprint` is the identity of a request
(what the ledger keys on and what the per-request success counter counts).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from llm_pipeline.simulator.analysis import word_set
from llm_pipeline.simulator.answers import Answer
from llm_pipeline.simulator.promptcache import CacheUsage
from llm_pipeline.simulator.wire import ApiError, new_id

__all__ = ["TRANSPORT_KEYS", "build_message", "build_usage", "check_context", "fingerprint", "validate"]

#: Keys that change how an answer is delivered, not what it is.
TRANSPORT_KEYS = frozenset({"stream", "metadata"})


#: Top-level keys of a Messages request (anthropic 2.13 `messages.create`, plus sampling knobs).
_KNOWN_KEYS = word_set(
    """model max_tokens messages system tools tool_choice output_config output_format temperature top_p
    top_k stop_sequences stream metadata thinking service_tier container cache_control context_management
    mcp_servers inference_geo speed diagnostics user_profile_id"""
)
_COUNT_TOKENS_KEYS = word_set(
    """model messages system tools tool_choice output_config output_format thinking cache_control
    context_management mcp_servers speed"""
)
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})


def fingerprint(params: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of `params` without the transport-only keys."""
    core = {k: v for k, v in params.items() if k not in TRANSPORT_KEYS}
    canonical = json.dumps(core, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _check_text_block(block: Mapping[str, Any], where: str) -> None:
    text = block.get("text")
    if not isinstance(text, str):
        raise _bad(f"{where}.text: Field required")
    if not text.strip():
        raise _bad(f"{where}: text content blocks must contain non-whitespace text")


def _check_content(content: Any, where: str, *, allow_empty: bool) -> None:
    if isinstance(content, str):
        if not content.strip() and not allow_empty:
            raise _bad(f"{where}: text content blocks must contain non-whitespace text")
        return
    if not isinstance(content, list):
        raise _bad(f"{where}: Input should be a valid string or list of content blocks")
    if not content and not allow_empty:
        raise _bad(f"{where}: List should have at least 1 item after validation, not 0")
    for j, block in enumerate(content):
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            raise _bad(f"{where}.{j}: Input should be a content block object with a type")
        if block["type"] == "text":
            _check_text_block(block, f"{where}.{j}")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _bad("messages: Input should be a valid list")
    if not messages:
        raise _bad("messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise _bad(f"messages.{i}: Input should be a valid dictionary")
        if message.get("role") not in ("user", "assistant"):
            raise _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise _bad(f"messages.{i}.content: Field required")
        last_assistant = i == len(messages) - 1 and message["role"] == "assistant"
        _check_content(message["content"], f"messages.{i}.content", allow_empty=last_assistant)
    if messages[0].get("role") != "user":
        raise _bad('messages: first message must use the "user" role')


def _check_tools(tools: Any) -> set[str]:
    if not isinstance(tools, list):
        raise _bad("tools: Input should be a valid list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise _bad(f"tools.{i}: Input should be a valid dictionary")
        name = tool.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            raise _bad(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        if name in names:
            raise _bad(f"tools: Tool names must be unique (duplicate {name!r})")
        names.add(name)
        if tool.get("type") in (None, "custom"):
            schema = tool.get("input_schema")
            if not isinstance(schema, Mapping):
                raise _bad(f"tools.{i}.custom.input_schema: Field required")
            if schema.get("type") != "object":
                raise _bad(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
    return names


def _check_tool_choice(choice: Any, tool_names: set[str]) -> None:
    if not isinstance(choice, Mapping) or choice.get("type") not in _TOOL_CHOICES:
        raise _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    kind = choice["type"]
    if kind in ("any", "tool") and not tool_names:
        raise _bad(f"tool_choice: tool_choice.type {kind!r} requires tools to be provided")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise _bad("tool_choice.tool.name: Field required")
        if name not in tool_names:
            raise _bad(f"tool_choice: Tool {name!r} not found in the provided tools")


def _check_output_config(config: Any) -> None:
    if not isinstance(config, Mapping):
        raise _bad("output_config: Input should be a valid dictionary")
    fmt = config.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        raise _bad("output_config.format.type: Input should be 'json_schema'")
    if not isinstance(fmt.get("schema"), Mapping):
        raise _bad("output_config.format.schema: Input should be a valid dictionary")


def _check_number(params: Mapping[str, Any], key: str, low: float, high: float) -> None:
    value = params.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _bad(f"{key}: Input should be a number between {low:g} and {high:g}")


def validate(
    params: Any, *, models: Collection[str], max_output_tokens: int, count_tokens: bool = False
) -> Mapping[str, Any]:
    """`params` if the real API would accept them, else raise the `ApiError` it would send."""
    if not isinstance(params, Mapping):
        raise _bad("The request body must be a JSON object")
    allowed = _COUNT_TOKENS_KEYS if count_tokens else _KNOWN_KEYS
    for key in params:
        if key not in allowed:
            raise _bad(f"{key}: Extra inputs are not permitted")
    model = params.get("model")
    if not isinstance(model, str):
        raise _bad("model: Field required" if model is None else "model: Input should be a valid string")
    if model not in models:
        raise ApiError(404, f"model: {model}")
    if not count_tokens:
        max_tokens = params.get("max_tokens")
        if max_tokens is None:
            raise _bad("max_tokens: Field required")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise _bad("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            raise _bad("max_tokens: Input should be greater than or equal to 1")
        if max_tokens > max_output_tokens:
            raise _bad(
                f"max_tokens: {max_tokens} > {max_output_tokens}, which is the maximum allowed "
                f"number of output tokens for {model}"
            )
    _check_messages(params.get("messages"))
    system = params.get("system")
    if system is not None and not isinstance(system, str):
        if not isinstance(system, list):
            raise _bad("system: Input should be a valid string or list of text blocks")
        for j, block in enumerate(system):
            if not isinstance(block, Mapping) or block.get("type") != "text":
                raise _bad(f"system.{j}.type: Input should be 'text'")
            _check_text_block(block, f"system.{j}")
    tool_names = _check_tools(params["tools"]) if params.get("tools") is not None else set()
    if params.get("tool_choice") is not None:
        _check_tool_choice(params["tool_choice"], tool_names)
    if params.get("output_config") is not None:
        _check_output_config(params["output_config"])
    _check_number(params, "temperature", 0.0, 1.0)
    _check_number(params, "top_p", 0.0, 1.0)
    stops = params.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise _bad("stop_sequences: Input should be a valid list of strings")
    if params.get("stream") not in (None, True, False):
        raise _bad("stream: Input should be a valid boolean")
    return params


def check_context(input_tokens: int, context_window: int) -> None:
    if input_tokens > context_window:
        raise _bad(f"prompt is too long: {input_tokens} tokens > {context_window} maximum")


def build_usage(input_tokens: int, output_tokens: int, cache: CacheUsage, *, tier: str) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens - cache.read - cache.created,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache.created,
        "cache_read_input_tokens": cache.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.created - cache.created_1h,
            "ephemeral_1h_input_tokens": cache.created_1h,
        },
        "service_tier": tier,
    }


def build_message(answer: Answer, model: str, usage: Mapping[str, Any]) -> dict[str, Any]:
    content = [
        {"id": new_id("toolu"), **block} if block.get("type") == "tool_use" else block
        for block in answer.content
    ]
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": answer.stop_reason,
        "stop_sequence": answer.stop_sequence,
        "stop_details": answer.stop_details,
        "usage": usage,
    }
