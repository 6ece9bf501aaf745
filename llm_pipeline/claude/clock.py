"""The one clock every wait in the call stack goes through.

Two readings, for two different jobs:

- `now()` is the base of every wait and of the shared limiter, breaker and claim state: a clock
  that never steps. `SystemClock` reads `time.monotonic()`, which on Linux is `CLOCK_MONOTONIC`,
  one counter for every process of a machine (containers included), so processes sharing SQLite
  files still agree on "the bucket is full again at t", and an NTP step of the wall clock stalls
  no one. It restarts at boot; the SQLite backend notices a new boot id and starts its transient
  rows afresh (`state/sqlite.py`). Redis state uses the Redis server's own clock, so machines
  agree too; callers only ever exchange relative seconds with it.
- `wall()` is seconds since the epoch, only for what a person reads or what outlives a boot:
  when a ledger answer was stored (and pruning by age), when a batch was submitted, and an
  HTTP-date `Retry-After`.

Tests pass a fake clock whose `sleep` advances virtual time, so the limiter's arithmetic is pinned
exactly and no test waits for real.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Time source and sleeper; injectable so tests control time."""

    def now(self) -> float:
        """Seconds on a clock that never steps (the base of waits and shared state)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (timestamps a person reads)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (non-positive values return after one scheduling pass)."""
        ...


class SystemClock:
    """Real time: `time.monotonic()`, `time.time()` and `asyncio.sleep` (itself monotonic)."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"
