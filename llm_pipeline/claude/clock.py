"""The one clock every wait in the call stack goes through.

`now()` is wall-clock time (seconds since the epoch), not a monotonic reading, because limiter and
breaker state is shared between processes through SQLite files: two processes can only agree on
"the bucket is full again at t" in a time base they share. (Redis state uses the Redis server's
clock instead, so machines agree too.) Tests pass a fake clock whose `sleep` advances virtual time,
so the limiter's arithmetic is pinned exactly and no test waits for real.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Time source and sleeper; injectable so tests control time."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (non-positive values return after one scheduling pass)."""
        ...


class SystemClock:
    """Real time: `time.time()` and `asyncio.sleep`."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"
