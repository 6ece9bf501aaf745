"""Stopping a run without abandoning what the API may already have billed.

A run stops early for two reasons: someone stops it (SIGTERM from a pod eviction, SIGINT or a
termination from the Dagster UI, which the Dagster layer turns into `Drain.request`), or a
systemic error (a bad key, an open breaker, a failed state store) makes every other call
pointless. Cancelling everything at once would drop up to `max_concurrency` requests the API is
already answering, and bills. Draining instead:

1. no new call starts: the runner's workers pull no more items, and the client refuses any new
   attempt (`Aborted`), retries included;
2. calls not yet sent (waiting for the limiter, the breaker's probe, another run's claim or a
   retry's backoff) end at once as `Aborted` results;
3. calls whose request is on the wire finish, and their answers go into the ledger (or the
   spool, `spool.py`), so the next run gets them for free;
4. after `timeout_s` the runner cancels whatever is still in flight (the answer is lost, and
   `Interrupted.abandoned` counts it), then raises: the systemic error, or `Interrupted`.

A `Drain` is shared by one runner and its client; it holds no asyncio objects, so it can be made
anywhere (the Dagster step makes one per step) and requested from a signal handler callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["DEFAULT_DRAIN_S", "Drain", "InFlight", "Interrupted"]

#: How long calls in flight get to finish once a run is stopped: Kubernetes' default grace period
#: before SIGKILL, and long enough for any answer that was nearly done.
DEFAULT_DRAIN_S = 30.0


class Interrupted(Exception):
    """The run was stopped before every item was done; in-flight answers were drained first."""

    def __init__(self, reason: str, *, finished: int = 0, abandoned: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        #: Calls that were in flight when the stop came and finished (their answers are kept).
        self.finished = finished
        #: Calls still in flight when the drain timed out (cancelled; the API may have billed them).
        self.abandoned = abandoned

    def __str__(self) -> str:
        return (
            f"stopped ({self.reason}): {self.finished} call(s) in flight finished and were kept, "
            f"{self.abandoned} abandoned"
        )


class Drain:
    """One run's stop request: who asked, and how long calls in flight may take to finish."""

    __slots__ = ("_listeners", "reason", "requested", "timeout_s")

    def __init__(self, timeout_s: float = DEFAULT_DRAIN_S) -> None:
        if timeout_s < 0:
            raise ValueError(f"drain timeout must be >= 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self.requested = False
        self.reason = ""
        self._listeners: list[Callable[[], None]] = []

    def request(self, reason: str) -> None:
        """Stop the run (the first reason wins); listeners run now, synchronously."""
        if self.requested:
            return
        self.requested, self.reason = True, reason
        for listener in list(self._listeners):
            listener()

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` on the request (at once if it came already); returns the unsubscribe."""
        self._listeners.append(listener)
        if self.requested:
            listener()

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def __repr__(self) -> str:
        state = f"requested ({self.reason})" if self.requested else "idle"
        return f"<Drain {state} timeout={self.timeout_s:g}s>"


class InFlight:
    """A client's calls, and which of them have a request on the wire: what a drain may cut short.

    On the drain's request every call not sending is cancelled; `aborted` tells such a call (in its
    `except CancelledError`) that the cancellation was the drain's, and takes it back, so the call
    ends as an `Aborted` result instead of tearing down its worker.
    """

    __slots__ = ("_aborted", "_calls", "_sending")

    def __init__(self, drain: Drain) -> None:
        self._calls: set[asyncio.Task[object]] = set()
        self._sending: set[asyncio.Task[object]] = set()
        self._aborted: set[asyncio.Task[object]] = set()
        drain.subscribe(self._abort_waiting)

    def enter(self) -> asyncio.Task[object] | None:
        task = asyncio.current_task()
        if task is not None:
            self._calls.add(task)
        return task

    def leave(self, task: asyncio.Task[object] | None) -> None:
        self._calls.discard(task)  # type: ignore[arg-type]
        self._sending.discard(task)  # type: ignore[arg-type]
        self._aborted.discard(task)  # type: ignore[arg-type]

    def sending(self, task: asyncio.Task[object] | None, on_wire: bool) -> None:
        """Mark (or unmark) the request of `task`'s call as on the wire: a drain lets it finish."""
        if task is not None:
            (self._sending.add if on_wire else self._sending.discard)(task)

    def aborted(self, task: asyncio.Task[object] | None) -> bool:
        """Was this cancellation the drain's? If so it is taken back (`uncancel`) and True."""
        if task is None or task not in self._aborted:
            return False
        self._aborted.discard(task)
        return task.uncancel() == 0

    def _abort_waiting(self) -> None:
        for task in self._calls - self._sending:
            self._aborted.add(task)
            task.cancel()

    def __len__(self) -> int:
        return len(self._calls)
