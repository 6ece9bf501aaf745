"""Test helpers passed in as arguments (never patched in): a virtual clock.

`FakeClock` keeps sleepers in a heap ordered by wake-up time (then by arrival), like aiolimiter's
`MockLoopTime`: a test moves time with `advance`/`advance_to` and checks exactly who was released
at each step. Sleeps are also recorded in `sleeps`, like tenacity's `sleep=intervals.append`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["FakeClock"]

#: Scheduling passes that let woken tasks run until they block again; the code under test awaits
#: only in-memory coroutines between sleeps, so a handful is plenty.
_SETTLE_PASSES = 20


async def _settle() -> None:
    for _ in range(_SETTLE_PASSES):
        await asyncio.sleep(0)


class FakeClock:
    """Virtual wall clock: `now()` only moves when the test (or the autopilot) moves it."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._wall_offset = 0.0
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        #: Every requested sleep, in call order (like tenacity's `sleep=intervals.append`).
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        """The epoch reading: virtual time plus any `step_wall` (an NTP step moves only this)."""
        return self._now + self._wall_offset

    def step_wall(self, seconds: float) -> None:
        """Move the wall clock alone, as NTP does; `now()` and the sleepers are unaffected."""
        self._wall_offset += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self._now + seconds, next(self._seq), future))
        await future

    @property
    def sleepers(self) -> int:
        """Tasks currently blocked in `sleep`."""
        return sum(not f.done() for _, _, f in self._heap)

    def next_wakeup(self) -> float | None:
        live = [deadline for deadline, _, f in self._heap if not f.done()]
        return min(live) if live else None

    async def advance(self, seconds: float) -> None:
        await self.advance_to(self._now + seconds)

    async def advance_to(self, when: float) -> None:
        """Release every sleeper due by `when`, in wake-up order, letting each run before the next."""
        await _settle()
        while self._heap and self._heap[0][0] <= when:
            deadline, _, future = heapq.heappop(self._heap)
            if future.done():
                continue
            self._now = max(self._now, deadline)
            future.set_result(None)
            await _settle()
        self._now = max(self._now, when)
        await _settle()

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now}, sleepers={self.sleepers})"
