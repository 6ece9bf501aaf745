"""Start a burst of calls a few per turn of the event loop, so the first reach the wire at once.

When hundreds of calls may start together (the runner's workers at the start of a run, or the
fan-out that follows a first contact), each runs about a millisecond of CPU (claim, ledger lookup,
booking, building the HTTP request) before its first I/O. Started in the same turn of the loop,
all of them run that part before the loop polls a socket again: the first request booked reaches
the server only after the last one is prepared, 0.3 s later for 250 calls measured on two cores.
In that time the server's bucket, full after a quiet spell, wastes its refill, and the limiter,
which counted its bucket from the first booking, is ahead of the server by as much: the margin
(`limiter.py`) would have to cover it. A few per turn, the loop polls its sockets between them.

How few: each turn's calls run before any of them can connect, write or read, and a new
connection takes a few turns. After a first contact (scenario 7: 3,000 RPM, 5 s bucket, nothing
configured), 16 per turn (~20 ms of CPU) let the second request reach the server 14 ms after the
fan-out began but the third only 100 ms later, the full bucket wasting its refill meanwhile:
0.9695 and 0.9691 of the limit. 4 per turn: the first hundred arrive within 0.25 s, 0.9712 and
0.9715 (8: 0.9702; 1: 0.9715, no better than 4). The price is paid where the limits are known
and 250 calls start at once into a full bucket while the burst's answers come back: their calls
start 4 per (now longer) turn, 0.972-0.974 of the limit against 0.979-0.983 at 16; scenario 1
(configured limits) measured 0.971 at 4 and 0.970 at 16.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["DEFAULT_STEP", "Stagger"]

#: Calls started per turn of the loop: ~5 ms of CPU between two polls of the sockets.
DEFAULT_STEP = 4


class Stagger:
    """`await stagger.turn()` before starting a call: at most `step` pass per turn of the loop, in order."""

    def __init__(self, step: int = DEFAULT_STEP) -> None:
        if step < 1:
            raise ValueError("step must be >= 1")
        self._step = step
        self._passed = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def turn(self) -> None:
        if not self._waiters and self._passed < self._step:
            self._pass()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _pass(self) -> None:
        if self._passed == 0:  # the first of this turn: the count starts again on the next turn
            asyncio.get_running_loop().call_soon(self._next_turn)
        self._passed += 1

    def _next_turn(self) -> None:
        self._passed = 0
        while self._waiters and self._passed < self._step:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter gives up its place
                waiter.set_result(None)
                self._pass()
