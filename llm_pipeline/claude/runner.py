"""Run many calls with at most N in flight, in bounded memory, streaming results as they finish.

A fixed pool of N worker tasks pulls items from the (sync or async) iterator one at a time, so a
100,000-document partition never holds more than N coroutines, not one task per document. Each
pulled item takes one of W window slots (W = 4N by default), given back only when its result has
been yielded: with `ordered=True` results come out in input order, and one slow head item can
hold back at most W items instead of letting the reorder buffer grow without bound; with
`ordered=False` results come out as completed and the window bounds what an idle consumer
leaves queued.

With `in_flight` (a callable, e.g. `Client.in_flight`), at most `in_flight()` of the N workers run
an item at once: it is read again whenever an item finishes, and every `in_flight_poll_s` while a
worker waits, so the fan-out follows what the caller learns (one call at first contact, then as
many as the rate limit and the latency call for). N is then the ceiling; idle workers hold no item.

Per-request failures are values (`CallResult.error`) and never stop the run. An exception that
escapes `fn` (a bug, or a deliberate systemic abort such as a bad API key) stops the run and
propagates from `map`. Without a `Drain` the in-flight work is cancelled at once; with one (the
pipeline always passes one, shared with its client) the run drains instead (`drain.py`): no
item is pulled any more, results of calls in flight keep coming until they are all done or
`drain.timeout_s` has passed (the rest is cancelled), and then the error is raised, or
`Interrupted` when the drain was requested from outside (a signal). `on_progress` gets a
`Progress` at most every `progress_every_s` and once at the end; `failed` counts results whose
`.ok` is False. Calls start at most a few per turn of the event loop (`stagger.py`), so the first
of a burst reach the wire before the last are prepared.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from llm_pipeline.claude.clock import Clock, SystemClock
from llm_pipeline.claude.drain import Drain, Interrupted
from llm_pipeline.claude.stagger import Stagger

__all__ = ["Progress", "ProgressSink", "Runner"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int | None
    elapsed_s: float
    rate_per_s: float
    eta_s: float | None
    failed: int


ProgressSink = Callable[[Progress], None]


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_FINISHED = object()
#: Queue messages of a drain: it was requested, and its time is up.
_DRAINING = object()
_DEADLINE = object()


class _Source(Generic[T]):
    """Hands out (index, item) pairs to the workers; None once the items run out."""

    def __init__(self, items: Iterable[T] | AsyncIterable[T]) -> None:
        self._sync: Iterator[T] | None = None
        self._async: AsyncIterator[T] | None = None
        if isinstance(items, AsyncIterable):
            self._async = aiter(items)
            self._lock = asyncio.Lock()
        else:
            self._sync = iter(items)
        self._index = 0
        self._exhausted = False

    async def next(self) -> tuple[int, T] | None:
        if self._exhausted:
            return None
        if self._sync is not None:
            item = next(self._sync, _FINISHED)
        else:
            async with self._lock:
                item = await anext(self._async, _FINISHED) if not self._exhausted else _FINISHED  # type: ignore[arg-type]
        if item is _FINISHED:
            self._exhausted = True
            return None
        index, self._index = self._index, self._index + 1
        return index, item  # type: ignore[return-value]


class _Gate:
    """Lets at most `target()` holders through at once, in arrival order; `target` is re-read on
    every `leave` and every `poll_s` while anyone waits (it may change at any time)."""

    def __init__(self, target: Callable[[], int], clock: Clock, poll_s: float) -> None:
        self._target, self._clock, self._poll_s = target, clock, poll_s
        self._active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ticker: asyncio.Task[None] | None = None

    async def enter(self) -> None:
        if not self._waiters and self._active < max(1, self._target()):
            self._active += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.create_task(self._tick())
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # admitted as it was cancelled: pass the place on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def leave(self) -> None:
        self._active -= 1
        self._admit()

    def _admit(self) -> None:
        room = max(1, self._target()) - self._active
        while room > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._active += 1
                room -= 1

    async def _tick(self) -> None:
        while self._waiters:
            await self._clock.sleep(self._poll_s)
            self._admit()

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()


class Runner:
    """Bounded-concurrency fan-out; reusable, holds no asyncio objects between runs."""

    def __init__(
        self,
        max_concurrency: int,
        *,
        on_progress: ProgressSink | None = None,
        progress_every_s: float = 5.0,
        window: int | None = None,
        clock: Clock | None = None,
        in_flight: Callable[[], int] | None = None,
        in_flight_poll_s: float = 0.1,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.max_concurrency = max_concurrency
        self.window = window if window is not None else 4 * max_concurrency
        if self.window < max_concurrency:
            raise ValueError("window must be >= max_concurrency")
        self._on_progress = on_progress
        self._every = progress_every_s
        self._clock = clock or SystemClock()
        self._in_flight = in_flight
        self._in_flight_poll_s = in_flight_poll_s

    async def map(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        ordered: bool = True,
        total: int | None = None,
        drain: Drain | None = None,
    ) -> AsyncIterator[R]:
        """Yield `fn(item)` for every item, in input order (or as completed), N at a time."""
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        source: _Source[T] = _Source(items)
        slots = asyncio.Semaphore(self.window)
        results: asyncio.Queue[Any] = asyncio.Queue()
        gate = _Gate(self._in_flight, self._clock, self._in_flight_poll_s) if self._in_flight else None
        stagger = Stagger()

        def stopping() -> bool:
            return drain is not None and drain.requested

        async def worker() -> None:
            try:
                while not stopping():
                    await slots.acquire()
                    if gate is not None:
                        await gate.enter()
                    await stagger.turn()
                    pulled = None if stopping() else await source.next()
                    if pulled is None:
                        slots.release()
                        if gate is not None:
                            gate.leave()
                        break
                    index, item = pulled
                    try:
                        result = await fn(item)
                    finally:
                        if gate is not None:
                            gate.leave()
                    results.put_nowait((index, result))
            except Exception as exc:  # noqa: BLE001 - the one boundary: the consumer cancels the rest, re-raises
                results.put_nowait(_Failed(exc))
            else:
                results.put_nowait(_FINISHED)

        started = last_report = self._clock.now()
        done = failed = finished_workers = drained = 0
        failure: BaseException | None = None
        timer: asyncio.Task[None] | None = None
        buffered: dict[int, R] = {}
        next_index = 0
        workers = [asyncio.create_task(worker()) for _ in range(self.max_concurrency)]
        unsubscribe = drain.subscribe(lambda: results.put_nowait(_DRAINING)) if drain is not None else None
        try:
            while finished_workers < len(workers):
                message = await results.get()
                if message is _FINISHED:
                    finished_workers += 1
                    continue
                if message is _DRAINING:
                    assert drain is not None
                    timer = asyncio.create_task(self._deadline(results, drain.timeout_s))
                    continue
                if message is _DEADLINE:
                    break
                if isinstance(message, _Failed):
                    if drain is None:
                        raise message.error
                    finished_workers += 1
                    failure = failure or message.error
                    drain.request(f"{type(message.error).__name__}: {message.error}")
                    continue
                index, result = message
                done += 1
                drained += timer is not None
                failed += getattr(result, "ok", True) is False
                now = self._clock.now()
                if self._on_progress is not None and now - last_report >= self._every:
                    last_report = now
                    self._on_progress(self._progress(done, failed, total, now - started))
                if not ordered:
                    slots.release()
                    yield result
                    continue
                buffered[index] = result
                while next_index in buffered:
                    ready = buffered.pop(next_index)
                    next_index += 1
                    slots.release()
                    yield ready
            if failure is not None:
                raise failure
            if drain is not None and drain.requested:
                abandoned = sum(not task.done() for task in workers)
                raise Interrupted(drain.reason, finished=drained, abandoned=abandoned)
            if self._on_progress is not None:
                self._on_progress(self._progress(done, failed, total, self._clock.now() - started))
        finally:
            if unsubscribe is not None:
                unsubscribe()
            if gate is not None:
                gate.close()
            for task in [*workers, *([timer] if timer is not None else [])]:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(
                    *workers, *([timer] if timer is not None else []), return_exceptions=True
                )

    async def _deadline(self, results: asyncio.Queue[Any], seconds: float) -> None:
        """The end of a drain: in-flight calls still running then are cancelled."""
        await self._clock.sleep(seconds)
        results.put_nowait(_DEADLINE)

    async def run(
        self,
        fn: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        ordered: bool = True,
        total: int | None = None,
        drain: Drain | None = None,
    ) -> list[R]:
        """`map` collected into a list (convenient when the results fit in memory)."""
        return [result async for result in self.map(fn, items, ordered=ordered, total=total, drain=drain)]

    @staticmethod
    def _progress(done: int, failed: int, total: int | None, elapsed: float) -> Progress:
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if total is not None and rate > 0 else None
        return Progress(done=done, total=total, elapsed_s=elapsed, rate_per_s=rate, eta_s=eta, failed=failed)

    def __repr__(self) -> str:
        return f"Runner(max_concurrency={self.max_concurrency}, window={self.window})"
