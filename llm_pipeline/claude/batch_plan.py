"""The pure parts of batch mode: custom ids, splitting into batches, poll backoff, result triage.

Splitting (ANTHROPIC_FACTS §3): a batch holds at most 100,000 requests and 256 MB, whichever comes
first. Requests are appended in order to the current batch until the next one would break either
limit; then the batch is handed out and a new one started. Sizes are measured as the JSON the SDK
sends for each item (`{"custom_id": ..., "params": ...}`, default separators, ASCII-escaped: never
smaller than the wire form) plus one byte for the comma and `ENVELOPE_BYTES` for the body around
the list. A single request larger than a whole batch may hold cannot be batched at all and is left
to the real-time flow (`Chunker.add` returns it in `too_large`).

Polling: the first wait is `batch_poll_s`, each later one `POLL_BACKOFF` times the previous, capped
at `batch_poll_max_s`. Results: `succeeded` is stored; `expired` and `errored` with a transient
error type are worth another try; `errored` with any other type (invalid request, auth, not found)
would fail the same way again; `canceled` means a person stopped the batch and is never resubmitted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from llm_pipeline.claude.state.base import BatchItem
from llm_pipeline.claude.types import Request

__all__ = [
    "ENVELOPE_BYTES",
    "POLL_BACKOFF",
    "RETRYABLE_ERROR_TYPES",
    "Chunk",
    "Chunker",
    "custom_id_for",
    "next_poll_delay",
    "triage",
]

POLL_BACKOFF = 1.5
#: `{"requests": [` ... `]}` and the SDK's other body keys, generously.
ENVELOPE_BYTES = 1024
#: Error types of an `errored` result that another attempt may fix (the SDK retries the same ones).
RETRYABLE_ERROR_TYPES = frozenset({"api_error", "overloaded_error", "rate_limit_error", "timeout_error"})

Triage = Literal["store", "retry", "give_up", "canceled"]


def custom_id_for(entry_key: str) -> str:
    """The request's fingerprint without the ledger namespace: 64 hex characters, a valid custom_id."""
    return entry_key.rpartition(":")[2]


def next_poll_delay(previous: float, cap: float) -> float:
    return min(cap, previous * POLL_BACKOFF)


def triage(result_type: str, error_type: str | None = None) -> Triage:
    """What to do with one result line of an ended batch."""
    if result_type == "succeeded":
        return "store"
    if result_type == "expired" or (result_type == "errored" and error_type in RETRYABLE_ERROR_TYPES):
        return "retry"
    if result_type == "canceled":
        return "canceled"
    return "give_up"


@dataclass(slots=True)
class Chunk:
    """One batch to submit: the request bodies and what to record about each."""

    payload: list[Mapping[str, Any]] = field(default_factory=list)
    items: list[BatchItem] = field(default_factory=list)
    size_bytes: int = ENVELOPE_BYTES

    def __len__(self) -> int:
        return len(self.items)


class Chunker:
    """Groups requests into batches within the count and size limits, in arrival order."""

    __slots__ = ("_current", "max_bytes", "max_requests", "too_large")

    def __init__(self, *, max_requests: int, max_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self._current = Chunk()
        #: Entry keys of requests too large for any batch.
        self.too_large: list[str] = []

    def add(self, request: Request, entry_key: str) -> Chunk | None:
        """Append `request`; return the batch it closed when it did not fit there, else None."""
        custom_id = custom_id_for(entry_key)
        body = {"custom_id": custom_id, "params": dict(request.params)}
        size = len(json.dumps(body).encode("utf-8")) + 1
        if ENVELOPE_BYTES + size > self.max_bytes:
            self.too_large.append(entry_key)
            return None
        full = None
        current = self._current
        if current.items and (
            len(current) + 1 > self.max_requests or current.size_bytes + size > self.max_bytes
        ):
            full, current = current, Chunk()
            self._current = current
        current.payload.append(body)
        current.items.append(BatchItem(custom_id, entry_key, request.key, request.model))
        current.size_bytes += size
        return full

    def flush(self) -> Chunk | None:
        """The last, partly filled batch (None when empty)."""
        current, self._current = self._current, Chunk()
        return current if current.items else None
