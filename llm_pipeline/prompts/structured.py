"""Structured output: strict JSON schemas from pydantic models, parsing answers, one repair turn.

Every step asks for JSON through `output_config.format` (type `json_schema`) and gets one text block
back. The schema sent is strict: every object has `additionalProperties: false` and lists all its
properties as required; `$ref`s are inlined. Constraints the API may not enforce (lengths, ranges,
item counts) are moved into descriptions by `anthropic.transform_schema`, so the model still sees them
and pydantic enforces them when the answer is parsed.

`parse_structured` turns every way an answer can be unusable into `BadOutput` with a reason a person
can act on; `repair_request` builds the one follow-up turn that shows the model its answer and the
problem. How many repairs to try is the asset's decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import anthropic
from anthropic.types import Message
from pydantic import BaseModel, ValidationError

from llm_pipeline.claude.errors import BadOutput, LLMError
from llm_pipeline.claude.types import Request

__all__ = [
    "answer_json",
    "answer_text",
    "output_config",
    "parse_structured",
    "repair_request",
    "strict_json_schema",
    "structured_request",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

_TRUNCATED = {"max_tokens": "max_tokens", "model_context_window_exceeded": "the model's context window"}
_MAX_ERRORS_SHOWN = 5
REPAIR_PROMPT = (
    "Your previous answer could not be used: {problem}\n"
    "Answer again with only a JSON object that matches the required schema exactly."
)


def strict_json_schema(model_cls: type[BaseModel] | Mapping[str, Any]) -> dict[str, Any]:
    """The strict JSON schema of a pydantic model (or of a JSON Schema), as `output_config.format`
    wants it."""
    schema = anthropic.transform_schema(model_cls if isinstance(model_cls, type) else dict(model_cls))
    defs = schema.pop("$defs", {})
    return _strict(schema, defs)


def _strict(node: Any, defs: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _strict(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    out = {key: _strict(value, defs) for key, value in node.items() if key not in ("title", "properties")}
    if "properties" in node:  # a name → schema mapping: its keys are property names, never keywords
        out["properties"] = {name: _strict(value, defs) for name, value in node["properties"].items()}
    if out.get("type") == "object":
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out


def output_config(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The `output_config` request parameter asking for JSON that matches `schema`."""
    return {"format": {"type": "json_schema", "schema": dict(schema)}}


def structured_request(
    key: str,
    content: str,
    *,
    system: str | list[dict[str, Any]],
    schema: Mapping[str, Any],
    model: str,
    max_tokens: int,
    step: str,
) -> Request:
    """A single-turn call whose answer must be JSON matching `schema`: the shape of every step's call.

    `content` is the only user turn, with any untrusted text already fenced by the caller; `system`
    is the instructions, as text or as blocks (the last one may carry a cache breakpoint).
    """
    return Request(
        key=key,
        params={
            "model": model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": content}],
            "output_config": output_config(schema),
        },
        tags={"step": step},
    )


def answer_text(message: Message) -> str | None:
    """The concatenated text blocks of an answer, or None when it has none."""
    texts = [block.text for block in message.content if block.type == "text"]
    return "".join(texts) if texts else None


def parse_structured(message: Message, model_cls: type[ModelT]) -> ModelT:
    """The validated answer, or `BadOutput` saying what was wrong with it."""
    data = answer_json(message)
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise BadOutput(f"the answer does not match the schema: {_describe(exc)}") from None


def answer_json(message: Message) -> Any:
    """The answer's JSON value, or `BadOutput` for a refusal, a cut-off, no text or invalid JSON."""
    if message.stop_reason == "refusal":
        details = message.stop_details
        why = (details.explanation or details.category) if details else None
        raise BadOutput(f"the model refused to answer{f' ({why})' if why else ''}")
    if message.stop_reason in _TRUNCATED:
        raise BadOutput(
            f"the answer was cut off at {_TRUNCATED[message.stop_reason]} "
            f"after {message.usage.output_tokens} output tokens"
        )
    text = answer_text(message)
    if text is None:
        kinds = sorted({block.type for block in message.content}) or ["nothing"]
        raise BadOutput(f"the answer has no text block (got {', '.join(kinds)})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadOutput(
            f"the answer is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(answer starts {text[:60]!r})"
        ) from None


def _describe(exc: ValidationError) -> str:
    """'topics: List should have at most 8 items; entities.2.type: Input should be ... (got 'x')'"""
    errors = exc.errors(include_url=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}{_got(e)}" for e in errors]
    more = len(parts) - _MAX_ERRORS_SHOWN
    return "; ".join(parts[:_MAX_ERRORS_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def _got(error: Any) -> str:
    """The offending value when it is short and scalar: what the model actually wrote."""
    value = error.get("input")
    if isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60:
        return f" (got {value!r})"
    return ""


def repair_request(
    request: Request, message: Message, problem: str | LLMError, *, max_tokens: int | None = None
) -> Request:
    """The same conversation plus the bad answer and a user turn naming `problem`, asking again.

    `max_tokens` lets the caller give a truncated answer more room. The repair differs from the
    original in its messages, so the ledger stores it as a separate call.
    """
    reason = problem.message if isinstance(problem, LLMError) else problem
    messages = [
        *request.params["messages"],
        {"role": "assistant", "content": (answer_text(message) or "").strip() or "(no answer)"},
        {"role": "user", "content": REPAIR_PROMPT.format(problem=reason)},
    ]
    params = {**request.params, "messages": messages}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    return Request(key=request.key, params=params, tags={**request.tags, "repair": "1"})
