"""One document's answer: call, validate, and give a bad answer one chance to be repaired.

Per-document failures come back as values (`Answer.error`), so one bad document never sinks a
partition. Systemic failures (`AuthError`, `CircuitOpen`: every other document would meet them too)
are raised instead, so the runner stops feeding work and the asset fails fast with a message a
person can act on rather than writing a partition full of identical error rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from anthropic.types import Message

from llm_pipeline.claude.errors import BadOutput, LLMError
from llm_pipeline.claude.metrics import CallRecord
from llm_pipeline.claude.types import CallResult, Request
from llm_pipeline.prompts.structured import repair_request

__all__ = ["Answer", "Call", "call_and_parse"]

T = TypeVar("T")
Call = Callable[[Request], Awaitable[CallResult]]

#: A truncated answer is repaired with this much more room.
_TRUNCATION_GROWTH = 2


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """The validated value or the error, plus the records of every call it took (first, repair)."""

    value: T | None
    error: LLMError | None
    records: tuple[CallRecord, ...]


async def call_and_parse(
    call: Call, request: Request, parse: Callable[[Message], T], *, repairs: int = 1
) -> Answer[T]:
    """Call, parse; on `BadOutput` send up to `repairs` follow-ups that show the model its mistake."""
    records: list[CallRecord] = []
    result = await _checked(call, request, records)
    for attempt in range(repairs + 1):
        if result.error is not None:
            return Answer(None, result.error, tuple(records))
        assert result.message is not None  # CallResult holds exactly one of message and error
        try:
            return Answer(parse(result.message), None, tuple(records))
        except BadOutput as problem:
            if attempt == repairs:
                suffix = f" (after {repairs} repair attempt{'s' if repairs != 1 else ''})" if repairs else ""
                return Answer(None, BadOutput(f"{problem.message}{suffix}"), tuple(records))
            grow = result.message.stop_reason == "max_tokens"
            repair = repair_request(
                request,
                result.message,
                problem,
                max_tokens=request.max_tokens * _TRUNCATION_GROWTH if grow else None,
            )
            result = await _checked(call, repair, records)
    raise AssertionError("unreachable: the loop returns on its last attempt")


async def _checked(call: Call, request: Request, records: list[CallRecord]) -> CallResult:
    result = await call(request)
    records.append(result.record)
    if result.error is not None and result.error.systemic:
        raise result.error
    return result
