"""What goes into the call stack and what comes out of it.

A `Request` is the keyword arguments of one `messages.create` call plus the caller's key (the
document id). A `CallResult` carries either the parsed `Message` or a typed `LLMError`, never
both, and always the `CallRecord` that describes what the call cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from anthropic.types import Message

from llm_pipeline.claude.errors import LLMError
from llm_pipeline.claude.metrics import CallRecord

__all__ = ["CallResult", "Request"]


@dataclass(frozen=True, slots=True)
class Request:
    """One call the pipeline wants answered.

    `params` are the `messages.create` keyword arguments (model, max_tokens, system, messages,
    tools, tool_choice, output_config, temperature, ...) as plain JSON-serialisable data, so the
    same request can be fingerprinted for the ledger, sent in real time or put into a batch.
    """

    key: str
    params: Mapping[str, Any]
    #: Free-form caller context (e.g. which pipeline step); never sent to the API.
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return str(self.params["model"])

    @property
    def max_tokens(self) -> int:
        return int(self.params["max_tokens"])

    def with_model(self, model: str) -> Request:
        """The same request aimed at another model (the fallback)."""
        return Request(key=self.key, params={**self.params, "model": model}, tags=self.tags)


@dataclass(frozen=True, slots=True)
class CallResult:
    """The outcome of one `Request`: exactly one of `message` and `error` is set."""

    request: Request
    record: CallRecord
    message: Message | None = None
    error: LLMError | None = None

    def __post_init__(self) -> None:
        if (self.message is None) == (self.error is None):
            raise ValueError("CallResult needs exactly one of message and error")

    @property
    def ok(self) -> bool:
        return self.error is None
