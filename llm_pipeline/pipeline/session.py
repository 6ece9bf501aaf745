"""The one place a Dagster step meets the call stack: `open_session` builds all of it, in one step.

    async with open_session(step="classifications", log=log, settings=s, backend="anthropic") as session:
        await session.prefetch(requests)                   # batch mode only
        async for row in session.map(handle, documents):  # bounded fan-out, rows as they finish
            ...
        metadata = session.metadata(statuses)

`open_session` opens the client (ledger, limiter, breaker, retries, SDK) on the step's running event
loop, builds the `Runner` above it (as many calls in flight as the client's limits and latency call
for: `Client.in_flight`) and the `StepTotals` that turn the stack's records and events
into run-log lines and metadata, and closes everything when the step ends, errors included. The
session is complete when it is handed out: nothing is attached to it later.

Batch mode (`settings.mode == "batch"`): `prefetch` first answers the step's requests through the
Message Batches API into the ledger (`claude/batches.py`); the ordinary per-document flow then runs
unchanged and finds the answers there. In real-time mode `prefetch` does nothing.

Stopping: the session's `Drain` is shared by the client and the runner. A systemic error drains the
calls in flight before it fails the step; SIGINT/SIGTERM (a UI termination, a pod eviction) request
the drain too (`termination.py`), and the step then fails as interrupted once the answers on the
wire are stored. A batch prefetch that is waiting when the stop comes is left to a later run (its
batches are recorded and resumed).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from llm_pipeline.claude import (
    CallResult,
    ClaudeSettings,
    Client,
    Drain,
    Interrupted,
    Request,
    Runner,
    open_client,
)
from llm_pipeline.pipeline.step_totals import PROGRESS_EVERY_S, StepTotals
from llm_pipeline.pipeline.termination import interrupted, watch_signals

__all__ = ["StepSession", "open_session"]

T = TypeVar("T")
R = TypeVar("R")


class StepSession:
    """The client, the runner above it, and the running totals of one step."""

    def __init__(self, *, client: Client, runner: Runner, totals: StepTotals, drain: Drain) -> None:
        self.client = client
        self.runner = runner
        self.totals = totals
        self.drain = drain

    @property
    def step(self) -> str:
        return self.totals.step

    @property
    def model(self) -> str:
        """The model this step's requests are sent to (the step's own, else the configured one)."""
        return self.totals.model

    @property
    def settings(self) -> ClaudeSettings:
        return self.client.settings

    async def call(self, request: Request) -> CallResult:
        """One logical call through the whole stack (ledger, limiter, breaker, retries, fallback)."""
        return await self.client.call(request)

    async def prefetch(self, requests: Callable[[], Iterable[Request | None]]) -> None:
        """Batch mode: answer `requests()` (None entries skipped) through the Message Batches API first.

        A no-op in real-time mode. `requests` is a function returning a fresh iterable because
        retry rounds pass over the documents again instead of holding them all in memory. A batch
        that has not ended by the deadline raises `BatchDeadlineExceeded` (systemic: the asset fails
        naming the batch ids, which a later run resumes).
        """
        if self.settings.mode != "batch":
            return
        prefetch = asyncio.ensure_future(
            self.client.prefetch(lambda: (r for r in requests() if r is not None))
        )
        unsubscribe = self.drain.subscribe(prefetch.cancel)
        try:
            report = await prefetch
        except asyncio.CancelledError:
            if not self.drain.requested:
                raise
            raise Interrupted(self.drain.reason) from None
        finally:
            unsubscribe()
        self.totals.merge(report)

    async def map(
        self,
        handler: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        total: int | None = None,
    ) -> AsyncIterator[R]:
        """`handler` over `items` with the configured concurrency, results as they complete."""
        async for result in self.runner.map(handler, items, ordered=False, total=total, drain=self.drain):
            yield result

    def metadata(self, statuses: Mapping[str, int] | Counter[str]) -> dict[str, Any]:
        """What the UI shows for the step (see `StepTotals.metadata`)."""
        return self.totals.metadata(statuses)


@asynccontextmanager
async def open_session(
    *,
    step: str,
    log: logging.Logger | Any,
    settings: ClaudeSettings,
    backend: str,
    model: str | None = None,
) -> AsyncIterator[StepSession]:
    """The call stack for one step, opened on the running loop and closed after it (see module doc)."""
    totals = StepTotals(step=step, log=log, settings=settings, backend=backend, model=model or settings.model)
    drain = Drain(settings.drain_s)
    try:
        with watch_signals(drain, log):
            async with open_client(
                settings, on_record=totals.on_record, on_event=totals.on_event, drain=drain
            ) as client:
                runner = Runner(
                    client.max_in_flight,
                    in_flight=client.in_flight,
                    on_progress=totals.on_progress,
                    progress_every_s=PROGRESS_EVERY_S,
                )
                yield StepSession(client=client, runner=runner, totals=totals, drain=drain)
    except Interrupted as exc:
        raise interrupted(exc, step) from exc
    if drain.requested:  # a signal during the step's last call: it finished, the run still stops
        raise interrupted(Interrupted(drain.reason), step)
