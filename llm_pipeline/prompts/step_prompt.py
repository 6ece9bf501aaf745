"""One LLM step's prompt and answer contract, declared once: request in, validated columns out.

A step's request is always the same shape, laid out for the prompt cache: first what every
document shares, then the document. The strict JSON schema the answer must match (`structured.py`,
sent as `output_config.format`) and the instructions as the system prompt form the shared prefix;
one user turn built from a per-document template follows. When the prefix reaches the model's
minimum cacheable length (`cache_prefix.py`), the system prompt is one text block carrying a cache
breakpoint, so everything up to its end (the schema included: the API keys the cache on it) is
written once and read by every later request; below the minimum the system prompt stays a plain
string and nothing is marked. The prefix is byte-stable: constant text and the schema, nothing per
run or per document. The template's placeholders are fenced blocks (`fencing.py`): `{document}` is
required, and each placeholder names a fence tag and the row's columns that fill it, as text (one
string column) or as a JSON object (several). The answer is validated against a pydantic model or
a JSON Schema, and becomes the step's output columns.

Nothing here knows Dagster: `pipeline/step.py` builds the asset from a `StepPrompt`, and a test can
render a request or parse an answer with plain data.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jsonschema
from anthropic.types import Message
from pydantic import BaseModel

from llm_pipeline.claude.errors import BadOutput
from llm_pipeline.claude.types import Request
from llm_pipeline.prompts.cache_prefix import CacheTTL, cache_marker, min_cacheable_tokens, prefix_tokens
from llm_pipeline.prompts.fencing import FENCE_TAGS, fence
from llm_pipeline.prompts.structured import (
    answer_json,
    parse_structured,
    strict_json_schema,
    structured_request,
)

__all__ = ["DOCUMENT", "Fence", "PromptError", "StepPrompt", "snippet"]

#: The placeholder every template must have: the document itself, fenced.
DOCUMENT = "document"
_MAX_SCHEMA_ERRORS = 5


class PromptError(ValueError):
    """A step's prompt or schema is unusable (raised when the step is defined, not per document)."""


def snippet(text: str, max_chars: int) -> str:
    """The start of `text`, cut at a word boundary near `max_chars` and marked when cut."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut) + " …"


@dataclass(frozen=True)
class Fence:
    """What fills one placeholder: `columns` of the row, as text (one column) or a JSON object."""

    columns: tuple[str, ...]
    #: Cut a text longer than this at a word boundary (a snippet), marked with " …".
    max_chars: int | None = None

    def render(self, row: Mapping[str, Any]) -> str:
        if len(self.columns) > 1:
            return json.dumps({c: row[c] for c in self.columns}, ensure_ascii=False)
        value = row[self.columns[0]]
        text = (
            value
            if isinstance(value, str)
            else ""
            if value is None
            else json.dumps(value, ensure_ascii=False)
        )
        return snippet(text, self.max_chars) if self.max_chars else text


@dataclass(frozen=True)
class StepPrompt:
    """Instructions, a per-document template, and the answer's schema (see the module docstring).

    `to_columns` turns a validated answer into the output columns (default: the answer's top-level
    fields of the same names); `check` may reject a valid answer with `BadOutput` (say, a label
    outside the configured taxonomy), which earns it the usual repair turn.
    """

    step: str
    instructions: str
    template: str
    #: The strict schema the API is sent (`structured.strict_json_schema`).
    schema: Mapping[str, Any]
    fences: Mapping[str, Fence] = field(default_factory=dict)
    #: What the answer is validated with: a pydantic model, else this JSON Schema as written (with
    #: the length and range constraints the strict schema can only describe).
    model_cls: type[BaseModel] | None = None
    answer_schema: Mapping[str, Any] | None = None
    to_columns: Callable[[Any], dict[str, Any]] | None = None
    check: Callable[[Any], None] | None = None

    def __post_init__(self) -> None:
        names = {name for _, name, _, _ in string.Formatter().parse(self.template) if name is not None}
        if DOCUMENT not in names:
            raise PromptError(
                f"template has no {{{DOCUMENT}}} placeholder: every request must carry its document"
            )
        unknown = sorted(names - set(FENCE_TAGS))
        if unknown:
            raise PromptError(f"template placeholders {unknown} are not fence tags {list(FENCE_TAGS)}")
        missing = sorted(names - set(self.fences))
        if missing:
            raise PromptError(f"template placeholders {missing} have no columns to fill them")
        if not self.instructions.strip():
            raise PromptError("instructions are empty")

    @classmethod
    def from_model(cls, model_cls: type[BaseModel], **fields: Any) -> StepPrompt:
        """The answer must validate as `model_cls` (its strict JSON schema is what the API is sent)."""
        return cls(schema=strict_json_schema(model_cls), model_cls=model_cls, **fields)

    @classmethod
    def from_json_schema(cls, schema: Mapping[str, Any], **fields: Any) -> StepPrompt:
        """The answer must validate against `schema` (checked as a JSON Schema here, at definition)."""
        try:
            jsonschema.Draft202012Validator.check_schema(dict(schema))
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise PromptError(f"invalid JSON Schema at {where}: {exc.message}") from None
        if schema.get("type") != "object":
            raise PromptError("the answer's JSON Schema must describe an object (type: object)")
        return cls(schema=strict_json_schema(dict(schema)), answer_schema=dict(schema), **fields)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Every input column the template reads, in a stable order."""
        seen = dict.fromkeys(c for f in self.fences.values() for c in f.columns)
        return tuple(seen)

    @cached_property
    def prefix_tokens(self) -> int:
        """Estimated tokens every request of the step shares: the schema and the instructions."""
        return prefix_tokens(self.instructions, self.schema)

    def cacheable(self, model: str) -> bool:
        """Does the shared prefix reach `model`'s minimum cacheable length?"""
        return self.prefix_tokens >= min_cacheable_tokens(model)

    def system(self, model: str, cache_ttl: CacheTTL = "5m") -> str | list[dict[str, Any]]:
        """The system prompt: one block ending in a cache breakpoint when cacheable, else the text."""
        if not self.cacheable(model):
            return self.instructions
        return [{"type": "text", "text": self.instructions, "cache_control": cache_marker(cache_ttl)}]

    def request(
        self, row: Mapping[str, Any], *, model: str, max_tokens: int, cache_ttl: CacheTTL = "5m"
    ) -> Request:
        """The call for one document (`row` holds `doc_id` and every required column).

        `cache_ttl` is how long the cached prefix lives: "1h" for batches, which can take longer
        than the default five minutes between two requests sharing it.
        """
        doc_id = str(row["doc_id"])
        blocks = {name: fence(name, spec.render(row), id=doc_id) for name, spec in self.fences.items()}
        return structured_request(
            doc_id,
            self.template.format(**blocks),
            system=self.system(model, cache_ttl),
            schema=self.schema,
            model=model,
            max_tokens=max_tokens,
            step=self.step,
        )

    def parse(self, message: Message) -> dict[str, Any]:
        """The output columns of a valid answer, or `BadOutput` saying what was wrong with it."""
        if self.model_cls is not None:
            value: Any = parse_structured(message, self.model_cls)
        else:
            value = answer_json(message)
            validator = jsonschema.Draft202012Validator(dict(self.answer_schema or self.schema))
            errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
            if errors:
                raise BadOutput(f"the answer does not match the schema: {_describe(errors)}")
        if self.check is not None:
            self.check(value)
        if self.to_columns is not None:
            return self.to_columns(value)
        data = value.model_dump(mode="python") if isinstance(value, BaseModel) else value
        return dict(data)


def _describe(errors: Sequence[jsonschema.ValidationError]) -> str:
    parts = [f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]
    more = len(parts) - _MAX_SCHEMA_ERRORS
    return "; ".join(parts[:_MAX_SCHEMA_ERRORS]) + (f"; and {more} more" if more > 0 else "")
