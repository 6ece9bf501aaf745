"""What a state backend offers: limiter rows, breaker rows and ledger entries, each changed atomically.

Three implementations share these protocols: `memory` (one process), `sqlite` (every process on a
machine, through WAL files and `BEGIN IMMEDIATE` transactions) and `redis` (every machine, through
Lua scripts that read the Redis server's clock). All times handed in and out are relative seconds,
so a backend may use its own time base (the Redis server's `TIME`) without callers noticing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from llm_pipeline.claude.state.circuit import Admission, BreakerPolicy, Transition

__all__ = [
    "Booking",
    "BreakerStore",
    "LedgerEntry",
    "LedgerStats",
    "LedgerStore",
    "LimiterStore",
    "StateBackend",
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


class LimiterStore(Protocol):
    async def reserve(
        self, name: str, costs: Sequence[float], tolerance: float, horizon: float = math.inf
    ) -> Booking: ...

    async def adjust(self, name: str, deltas: Sequence[float]) -> None: ...

    async def undo(self, name: str, booking: Booking, costs: Sequence[float]) -> None: ...

    async def cool_down(self, name: str, seconds: float, tolerance: float) -> None: ...

    async def raise_floor(self, name: str, backlogs: Sequence[float | None]) -> None: ...

    async def peek(self, name: str) -> Booking: ...


class BreakerStore(Protocol):
    async def admit(self, name: str, policy: BreakerPolicy, *, claim: bool) -> Admission: ...

    async def failure(
        self, name: str, policy: BreakerPolicy, *, probe: bool, error: str
    ) -> Transition | None: ...

    async def success(self, name: str, *, probe: bool) -> Transition | None: ...

    async def release(self, name: str) -> None: ...


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


class StateBackend(Protocol):
    kind: str
    limiter: LimiterStore
    breaker: BreakerStore
    ledger: LedgerStore

    async def aclose(self) -> None: ...
