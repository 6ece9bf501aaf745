"""What a state backend offers: limiter rows, breaker rows, ledger entries, claims on requests in
flight and pending batches.

Three implementations share these protocols: `memory` (one process), `sqlite` (every process on a
machine, through WAL files and `BEGIN IMMEDIATE` transactions) and `redis` (every machine, through
Lua scripts that read the Redis server's clock). All times handed in and out are relative seconds,
so a backend may use its own time base (the Redis server's `TIME`) without callers noticing.
Ledger timestamps (`created_at`) are the exception: wall-clock seconds, for people and pruning.

A backend raises its library's own errors (`sqlite3.Error`, `redis.RedisError`, `OSError`);
`claude/state_errors.py` turns them into `StateStoreError` at one boundary.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Protocol

from llm_pipeline.claude.state.circuit import Admission, BreakerPolicy, Transition

__all__ = [
    "BatchItem",
    "BatchStore",
    "Booking",
    "BreakerStore",
    "ClaimStore",
    "LearnedLimits",
    "LearnedStore",
    "LedgerEntry",
    "LedgerSelection",
    "LedgerStats",
    "LedgerStore",
    "LimiterStore",
    "PendingBatch",
    "StateBackend",
    "decode_items",
    "encode_items",
]


@dataclass(frozen=True, slots=True)
class Booking:
    """Result of a limiter operation: how long to wait and how full each bucket now is."""

    #: Seconds from now until the booked request may start (or, for `peek`, until a pause ends).
    delay: float
    #: Per rate, seconds until its bucket is full again (0 = full).
    backlogs: tuple[float, ...]
    #: For `reserve`: the row as it was, and its version after booking, so a cancelled waiter
    #: can be undone exactly when nothing happened since.
    before: tuple[float, ...] = ()
    version: float = 0.0
    #: The row's cumulative cool-down shift; a waiter adds any growth of it to its start.
    shift: float = 0.0
    #: For `reserve`: False when the start lay beyond the horizon and nothing was booked.
    booked: bool = True
    #: For `reserve`: units of each rate booked ever, this booking included (`gcra.catch_up`).
    counts: tuple[float, ...] = ()


class LimiterStore(Protocol):
    """A limiter row per name. Every change takes the caller's `intervals` (seconds per unit of each
    rate; empty = as the row is) and first expresses the row in them (`gcra.retune`)."""

    async def reserve(
        self,
        name: str,
        costs: Sequence[float],
        tolerance: float,
        horizon: float = math.inf,
        credit: Sequence[float] = (),
        intervals: Sequence[float] = (),
    ) -> Booking:
        """Apply `credit` (held give-backs, <= 0) as `adjust`, then book `costs` if their start is
        within `horizon`: one atomic change, whether or not it books."""
        ...

    async def adjust(self, name: str, deltas: Sequence[float], intervals: Sequence[float] = ()) -> None: ...

    async def undo(
        self, name: str, booking: Booking, costs: Sequence[float], intervals: Sequence[float] = ()
    ) -> None: ...

    async def cool_down(
        self, name: str, seconds: float, tolerance: float, intervals: Sequence[float] = ()
    ) -> None: ...

    async def raise_floor(
        self, name: str, backlogs: Sequence[float | None], intervals: Sequence[float] = ()
    ) -> None: ...

    async def catch_up(
        self,
        name: str,
        age: float,
        shift: float,
        backlogs: Sequence[float | None],
        marks: Sequence[float],
        limits: Sequence[float],
        intervals: Sequence[float] = (),
    ) -> tuple[float, ...]:
        """`gcra.catch_up`: give back (at most `limits` seconds of each rate) what a response sent
        `age` seconds ago shows the server never counted; returns the seconds given back."""
        ...

    async def peek(self, name: str) -> Booking: ...


@dataclass(frozen=True, slots=True)
class LearnedLimits:
    """What the API's `anthropic-ratelimit-*` headers said about one model at one endpoint, and when.

    A rate is None when the server reported limits but none for it (it does not limit that rate).
    `burst_s` is the depth of the server's buckets in seconds of their rate, as far as the headers
    showed it (None: not estimated yet). Times are epoch seconds of the process that wrote them.
    """

    #: "<endpoint>/<model>", the limiter's key.
    name: str
    rpm: float | None
    itpm: float | None
    otpm: float | None
    burst_s: float | None
    #: The latest response that showed these values, and when they last changed.
    seen_at: float
    changed_at: float


class LearnedStore(Protocol):
    """Learned limits, one record per endpoint and model, kept for every process and the next run."""

    async def get(self, name: str) -> LearnedLimits | None: ...

    async def put(self, record: LearnedLimits) -> None: ...

    async def all(self) -> list[LearnedLimits]: ...


class BreakerStore(Protocol):
    async def admit(self, name: str, policy: BreakerPolicy, *, claim: bool) -> Admission: ...

    async def failure(
        self, name: str, policy: BreakerPolicy, *, probe: bool, error: str
    ) -> Transition | None: ...

    async def success(self, name: str, *, probe: bool) -> Transition | None: ...

    async def release(self, name: str) -> None: ...

    async def renew(self, name: str, lease_s: float) -> None:
        """A probe still in flight keeps its slot `lease_s` longer (so a dead prober's lapses soon)."""
        ...


class ClaimStore(Protocol):
    """Who is calling for which ledger entry right now, so overlapping runs pay once.

    A claim is held by `owner` until released, until the entry's answer is put into the ledger
    (which ends any claim on it), or until its lease lapses unrenewed (its holder died). Taking a
    claim also checks, in the same atomic step, that the entry has no answer yet (unless
    `answered_too`, for a refresh run): otherwise a holder's answer landing between a caller's
    ledger lookup and its claim would be paid for a second time.
    """

    async def claim(self, key: str, owner: str, lease_s: float, *, answered_too: bool = False) -> bool:
        """Take `key` for `owner` if it is free, lapsed or already `owner`'s, and not answered;
        True when held."""
        ...

    async def renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None: ...

    async def release(self, key: str, owner: str) -> None: ...


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One stored answer: the Message JSON plus what the ledger's reports need without parsing it."""

    fingerprint: str
    key: str
    model: str
    message_json: str
    input_tokens: int
    output_tokens: int
    created_at: float
    #: The pipeline step that asked (`Request.tags["step"]`), so entries can be deleted by step.
    step: str = ""


@dataclass(frozen=True, slots=True)
class LedgerSelection:
    """Which entries `LedgerStore.delete` removes: those matching any of the given values."""

    fingerprints: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fingerprints or self.keys or self.models or self.steps)

    def matches(self, entry: LedgerEntry) -> bool:
        """An entry's fingerprint matches with or without its `<endpoint>:` prefix."""
        bare = entry.fingerprint.rsplit(":", 1)[-1]
        return (
            entry.fingerprint in self.fingerprints
            or bare in self.fingerprints
            or entry.key in self.keys
            or entry.model in self.models
            or entry.step in self.steps
        )


@dataclass(frozen=True, slots=True)
class LedgerStats:
    entries: int
    oldest: float | None
    newest: float | None
    input_tokens: int
    output_tokens: int


class LedgerStore(Protocol):
    async def get(self, fingerprints: Sequence[str]) -> LedgerEntry | None: ...

    async def put(self, entry: LedgerEntry) -> None: ...

    async def stats(self) -> LedgerStats: ...

    async def prune(self, before: float) -> int: ...

    async def delete(self, selection: LedgerSelection) -> int:
        """Remove the entries `selection` matches (an empty selection removes nothing)."""
        ...


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One request inside a submitted batch: enough to file its answer without the request itself."""

    custom_id: str
    #: The ledger entry key the answer goes under (namespaced fingerprint).
    fingerprint: str
    #: The caller's key (document id) and the model, as `LedgerEntry` records them.
    key: str
    model: str


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """A submitted Message Batch whose results have not been collected into the ledger yet."""

    batch_id: str
    namespace: str
    created_at: float
    items: tuple[BatchItem, ...]


def encode_items(items: Sequence[BatchItem]) -> str:
    """Items as one compact JSON array of arrays (SQLite and Redis keep a batch in one value)."""
    return json.dumps([astuple(item) for item in items], separators=(",", ":"))


def decode_items(text: str) -> tuple[BatchItem, ...]:
    return tuple(BatchItem(*fields) for fields in json.loads(text))


class BatchStore(Protocol):
    """Submitted batches, recorded before anyone waits on them, so a crashed run resumes them.

    `record` is one atomic write (the batch and all its items); `finish` forgets a batch once its
    results are in the ledger; `pending` lists what is still outstanding for one namespace.
    """

    async def record(self, batch: PendingBatch) -> None: ...

    async def pending(self, namespace: str) -> list[PendingBatch]: ...

    async def finish(self, batch_id: str) -> None: ...


class StateBackend(Protocol):
    kind: str
    limiter: LimiterStore
    breaker: BreakerStore
    ledger: LedgerStore
    claims: ClaimStore
    batches: BatchStore
    learned: LearnedStore
    #: Where the state lives, credentials redacted: what messages may show.
    location: str
    #: The store's identity as `verify` found it (Redis only; None elsewhere), see `spool.py`.
    marker: str | None

    async def verify(self) -> None:
        """Make sure the store answers before any call (Redis: ping, and its marker key)."""
        ...

    async def aclose(self) -> None: ...
