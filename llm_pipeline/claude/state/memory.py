"""In-process state (`settings.state = None`): dictionaries, shared by every caller of one stack.

Each operation runs without awaiting, so on one event loop it is atomic without a lock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from llm_pipeline.claude.state import circuit, gcra
from llm_pipeline.claude.state.base import Booking, LedgerEntry, LedgerSelection, LedgerStats, PendingBatch
from llm_pipeline.claude.state.circuit import Admission, BreakerPolicy, Transition
from llm_pipeline.claude.state.learned import MemoryLearnedStore

__all__ = ["MemoryBackend"]


class MemoryLimiterStore:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._rows: dict[str, gcra.LimiterRow] = {}

    def _row(self, name: str) -> gcra.LimiterRow:
        return self._rows.setdefault(name, gcra.LimiterRow())

    async def reserve(
        self,
        name: str,
        costs: Sequence[float],
        tolerance: float,
        horizon: float = math.inf,
        credit: Sequence[float] = (),
        intervals: Sequence[float] = (),
    ) -> Booking:
        return gcra.book(self._row(name), self._now(), costs, tolerance, horizon, credit, intervals)

    async def adjust(self, name: str, deltas: Sequence[float], intervals: Sequence[float] = ()) -> None:
        gcra.adjust(self._row(name), self._now(), deltas, intervals)

    async def undo(
        self, name: str, booking: Booking, costs: Sequence[float], intervals: Sequence[float] = ()
    ) -> None:
        gcra.undo(self._row(name), self._now(), booking.before, booking.version, costs, intervals)

    async def cool_down(
        self, name: str, seconds: float, tolerance: float, intervals: Sequence[float] = ()
    ) -> None:
        gcra.cool_down(self._row(name), self._now(), seconds, tolerance, intervals)

    async def raise_floor(
        self, name: str, backlogs: Sequence[float | None], intervals: Sequence[float] = ()
    ) -> None:
        gcra.raise_floor(self._row(name), self._now(), backlogs, intervals)

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
        return gcra.catch_up(self._row(name), self._now(), age, shift, backlogs, marks, limits, intervals)

    async def peek(self, name: str) -> Booking:
        return gcra.peek(self._row(name), self._now())


class MemoryBreakerStore:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._rows: dict[str, circuit.BreakerRow] = {}

    def _row(self, name: str) -> circuit.BreakerRow:
        return self._rows.setdefault(name, circuit.BreakerRow())

    async def admit(self, name: str, policy: BreakerPolicy, *, claim: bool) -> Admission:
        return circuit.admit(self._row(name), self._now(), policy, claim=claim)

    async def failure(
        self, name: str, policy: BreakerPolicy, *, probe: bool, error: str
    ) -> Transition | None:
        return circuit.on_failure(self._row(name), self._now(), policy, probe=probe, error=error)

    async def success(self, name: str, *, probe: bool) -> Transition | None:
        return circuit.on_success(self._row(name), probe=probe)

    async def release(self, name: str) -> None:
        circuit.release(self._row(name))

    async def renew(self, name: str, lease_s: float) -> None:
        circuit.renew(self._row(name), self._now(), lease_s)


class MemoryClaimStore:
    """key -> (owner, lease end); a lapsed claim is free for anyone."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self.held: dict[str, tuple[str, float]] = {}
        #: The ledger's entries (set by the backend), so a claim can check for an answer.
        self.answers: dict[str, LedgerEntry] = {}

    async def claim(self, key: str, owner: str, lease_s: float, *, answered_too: bool = False) -> bool:
        if not answered_too and key in self.answers:
            return False
        now = self._now()
        holder = self.held.get(key)
        if holder is not None and holder[0] != owner and holder[1] > now:
            return False
        self.held[key] = (owner, now + lease_s)
        return True

    async def renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None:
        until = self._now() + lease_s
        for key in keys:
            if self.held.get(key, ("",))[0] == owner:
                self.held[key] = (owner, until)

    async def release(self, key: str, owner: str) -> None:
        if self.held.get(key, ("",))[0] == owner:
            del self.held[key]


class MemoryLedgerStore:
    def __init__(self, claims: MemoryClaimStore | None = None) -> None:
        self._entries: dict[str, LedgerEntry] = {}
        self._claims = claims

    async def get(self, fingerprints: Sequence[str]) -> LedgerEntry | None:
        return next((self._entries[f] for f in fingerprints if f in self._entries), None)

    async def put(self, entry: LedgerEntry) -> None:
        self._entries[entry.fingerprint] = entry
        if self._claims is not None:
            self._claims.held.pop(entry.fingerprint, None)

    async def stats(self) -> LedgerStats:
        rows = list(self._entries.values())
        times = [e.created_at for e in rows]
        return LedgerStats(
            entries=len(rows),
            oldest=min(times, default=None),
            newest=max(times, default=None),
            input_tokens=sum(e.input_tokens for e in rows),
            output_tokens=sum(e.output_tokens for e in rows),
        )

    async def prune(self, before: float) -> int:
        old = [f for f, e in self._entries.items() if e.created_at < before]
        for fingerprint in old:
            del self._entries[fingerprint]
        return len(old)

    async def delete(self, selection: LedgerSelection) -> int:
        doomed = [f for f, e in self._entries.items() if selection.matches(e)]
        for fingerprint in doomed:
            del self._entries[fingerprint]
        return len(doomed)


class MemoryBatchStore:
    """Pending batches of this process only: a crash forgets them (use a state directory to resume)."""

    def __init__(self) -> None:
        self._batches: dict[str, PendingBatch] = {}

    async def record(self, batch: PendingBatch) -> None:
        self._batches[batch.batch_id] = batch

    async def pending(self, namespace: str) -> list[PendingBatch]:
        found = [b for b in self._batches.values() if b.namespace == namespace]
        return sorted(found, key=lambda b: (b.created_at, b.batch_id))

    async def finish(self, batch_id: str) -> None:
        self._batches.pop(batch_id, None)


class MemoryBackend:
    """State that lives and dies with one stack: right for tests and one-off scripts."""

    kind = "memory"
    location = "memory"
    marker = None

    def __init__(self, now: Callable[[], float]) -> None:
        self.limiter = MemoryLimiterStore(now)
        self.breaker = MemoryBreakerStore(now)
        self.claims = MemoryClaimStore(now)
        self.ledger = MemoryLedgerStore(self.claims)
        self.claims.answers = self.ledger._entries
        self.batches = MemoryBatchStore()
        self.learned = MemoryLearnedStore()

    async def verify(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
