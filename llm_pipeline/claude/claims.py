"""One payer per request across overlapping runs: claim a request before calling for it.

The ledger makes a request free once its answer is stored; it says nothing about a request that is
being answered right now. Two runs of the same day (a backfill overlapping a manual run, or a
retried run whose first attempt still runs) would each miss the ledger and each pay. So before
calling, the client claims the request's ledger entry in the shared state:

    claim free (or lapsed)    -> ours: call, store the answer (which ends the claim), or release it
    answered meanwhile        -> refused, in the same atomic step as the claim: take the answer
    held by another holder    -> wait: poll the ledger for its answer (a hit costs nothing); when the
                                 claim is gone without an answer (the holder failed), claim it
    held by this very client  -> the same: wait for the other caller in this process

A claim is a lease (`lease_s`, 30 s) that its holder renews every third of it while it lives, so
a holder that died (SIGKILL, a lost machine) blocks others for at most one lease. Waiting is
polling (every `poll_s`, growing 1.5x to `max_poll_s`): a store-neutral way to hear of an answer
from another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.errors import StateStoreError
from llm_pipeline.claude.state.base import ClaimStore
from llm_pipeline.claude.state_errors import map_state_errors

__all__ = ["CLAIM_LEASE_S", "Claims"]

T = TypeVar("T")
H = TypeVar("H")

CLAIM_LEASE_S = 30.0
_POLL_S = 0.2
_MAX_POLL_S = 2.0


class Claims:
    """The claims one client holds, and the task that renews them; create it on any loop, use it on one."""

    __slots__ = (
        "_clock",
        "_held",
        "_location",
        "_renewal",
        "_store",
        "lease_s",
        "max_poll_s",
        "owner",
        "poll_s",
    )

    def __init__(
        self,
        store: ClaimStore,
        *,
        clock: Clock,
        location: str = "",
        lease_s: float = CLAIM_LEASE_S,
        poll_s: float = _POLL_S,
        max_poll_s: float = _MAX_POLL_S,
    ) -> None:
        self._store = store
        self._clock = clock
        self._location = location
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        #: Who we are in the shared state: unique per client (a process may run several).
        self.owner = uuid.uuid4().hex
        self._held: set[str] = set()
        self._renewal: asyncio.Task[None] | None = None

    async def acquire(self, key: str, *, answered_too: bool = False) -> bool:
        """Claim `key`; False when another caller (here or elsewhere) is answering it, or it has an
        answer already (unless `answered_too`: a refresh run asks again)."""
        if key in self._held:
            return False
        if not await self._store.claim(key, self.owner, self.lease_s, answered_too=answered_too):
            return False
        self._held.add(key)
        if self._renewal is None:
            self._renewal = asyncio.create_task(self._renew())
        return True

    async def wait(
        self, key: str, answered: Callable[[], Awaitable[T | None]], *, answered_too: bool = False
    ) -> T | None:
        """Wait for another caller's answer to `key`: `answered()` (a ledger lookup) once it is
        there, or None once the claim is ours (the other caller gave up or died)."""
        delay = self.poll_s
        while True:
            found = await answered()
            if found is not None:
                return found
            if await self.acquire(key, answered_too=answered_too):
                return None
            await self._clock.sleep(delay)
            delay = min(delay * 1.5, self.max_poll_s)

    async def exclusively(
        self,
        key: str,
        call: Callable[[], Awaitable[T]],
        answered: Callable[[], Awaitable[H | None]],
        *,
        answered_too: bool = False,
    ) -> T | H:
        """`call()` holding `key`'s claim (released if it fails), or another caller's answer to it."""
        with map_state_errors(self._location):
            if not await self.acquire(key, answered_too=answered_too):
                found = await self.wait(key, answered, answered_too=answered_too)
                if found is not None:
                    return found
        try:
            result = await call()
        except BaseException:
            with contextlib.suppress(StateStoreError), map_state_errors(self._location):
                await self.release(key)
            raise
        self.stored(key)
        return result

    def stored(self, key: str) -> None:
        """The answer is in the ledger, whose write ended the claim in the shared state."""
        self._held.discard(key)

    async def release(self, key: str) -> None:
        """Give up `key` without an answer, so a waiting caller may try."""
        if key in self._held:
            self._held.discard(key)
            await self._store.release(key, self.owner)

    async def _renew(self) -> None:
        while True:
            await self._clock.sleep(self.lease_s / 3)
            if self._held:
                with contextlib.suppress(StateStoreError), map_state_errors(self._location):
                    await self._store.renew(sorted(self._held), self.owner, self.lease_s)

    async def aclose(self) -> None:
        """Stop renewing and give back every claim still held (best effort: they lapse anyway)."""
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
            self._renewal = None
        held, self._held = sorted(self._held), set()
        with contextlib.suppress(StateStoreError), map_state_errors(self._location):
            for key in held:
                await self._store.release(key, self.owner)

    def __repr__(self) -> str:
        return f"<Claims owner={self.owner[:8]} held={len(self._held)} lease={self.lease_s:g}s>"
