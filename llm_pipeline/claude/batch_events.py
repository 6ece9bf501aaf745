"""What batch mode reports while it works: frozen events for the step's log, and its one error.

Like the retry and breaker events, these go to the stack's event sink (`on_event`), so `claude/`
imports no logging backend; each reads as one log line through `str()`. `BatchCanceled` and
`BatchLost` deserve a warning (requests fall back to real-time, full-price calls), the rest info.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llm_pipeline.claude.errors import LLMError

__all__ = [
    "BatchAnswer",
    "BatchCanceled",
    "BatchDeadlineExceeded",
    "BatchEnded",
    "BatchLost",
    "BatchPollFailed",
    "BatchProgress",
    "BatchResumed",
    "BatchSubmitted",
]


class BatchDeadlineExceeded(LLMError):
    """Batches had not ended in time; they stay recorded, and a later run resumes them."""

    systemic = True

    def __init__(self, batch_ids: Sequence[str], deadline_s: float) -> None:
        self.batch_ids = tuple(batch_ids)
        super().__init__(
            f"{len(batch_ids)} message batch(es) had not ended {deadline_s:g} s after the step began "
            f"waiting: {', '.join(batch_ids)}. They stay recorded in the ledger state: re-run the "
            "partition later to collect them without resubmitting (or cancel them in the Console)."
        )


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """An answer this run collected from a batch: which batch, and how long the batch took."""

    batch_id: str
    latency_ms: float


@dataclass(frozen=True, slots=True)
class BatchSubmitted:
    batch_id: str
    requests: int
    size_bytes: int
    retry_round: int

    def __str__(self) -> str:
        again = f" (retry round {self.retry_round})" if self.retry_round else ""
        return f"submitted {self.batch_id}: {self.requests} requests, {self.size_bytes / 1e6:.1f} MB{again}"


@dataclass(frozen=True, slots=True)
class BatchResumed:
    batch_id: str
    requests: int

    def __str__(self) -> str:
        return f"resuming {self.batch_id} ({self.requests} requests) from an earlier run: not resubmitted"


@dataclass(frozen=True, slots=True)
class BatchProgress:
    ended: int
    total: int
    requests_processing: int
    elapsed_s: float
    next_poll_s: float

    def __str__(self) -> str:
        return (
            f"batches {self.ended}/{self.total} ended, {self.requests_processing} requests processing, "
            f"waited {self.elapsed_s:.0f}s, next poll in {self.next_poll_s:.0f}s"
        )


@dataclass(frozen=True, slots=True)
class BatchEnded:
    batch_id: str
    succeeded: int
    errored: int
    expired: int
    canceled: int

    def __str__(self) -> str:
        return (
            f"{self.batch_id} ended: {self.succeeded} succeeded, {self.errored} errored, "
            f"{self.expired} expired, {self.canceled} canceled"
        )


@dataclass(frozen=True, slots=True)
class BatchCanceled:
    batch_id: str
    canceled: int

    def __str__(self) -> str:
        return (
            f"{self.batch_id} was canceled: {self.canceled} requests got no batch answer; they are not "
            "resubmitted in a batch and will be called in real time (full price)"
        )


@dataclass(frozen=True, slots=True)
class BatchPollFailed:
    batch_id: str
    error: str

    def __str__(self) -> str:
        return f"polling {self.batch_id} failed, trying again at the next poll: {self.error}"


@dataclass(frozen=True, slots=True)
class BatchLost:
    batch_id: str
    error: str

    def __str__(self) -> str:
        return f"{self.batch_id} no longer exists ({self.error}); its requests go the real-time way"
