"""One asset step's use of the call stack: fan-out, progress in the run log, and the step's metadata.

The call stack reports through frozen records and events (STYLE habit 14); this is where they become
Dagster log lines and materialization metadata. Progress goes to the run log at most every few
seconds: done/total, rate, ETA, retries, 429s, errors and ledger hits, so a person watching a long
step knows whether it is healthy without opening anything else.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import dagster as dg

from llm_pipeline.claude import CallResult, ClaudeSettings, Client, Progress, Request, Runner
from llm_pipeline.claude.metrics import CallRecord, Tally

__all__ = ["StepSession"]

T = TypeVar("T")
R = TypeVar("R")

#: Seconds between progress lines in the run log.
PROGRESS_EVERY_S = 5.0


class StepSession:
    """The client, runner and running totals of one step; built by `ClaudeResource.session`."""

    def __init__(
        self, *, step: str, log: logging.Logger | Any, settings: ClaudeSettings, backend: str
    ) -> None:
        self.step = step
        self.settings = settings
        self.backend = backend
        self._log = log
        self._client: Client | None = None
        self._tally = Tally()
        self._started = time.monotonic()

    @property
    def model(self) -> str:
        return self.settings.model

    def attach(self, client: Client) -> None:
        self._client = client

    async def call(self, request: Request) -> CallResult:
        """One logical call through the whole stack (ledger, limiter, breaker, retries, fallback)."""
        if self._client is None:
            raise RuntimeError("StepSession.call before the client was attached")
        return await self._client.call(request)

    async def map(
        self,
        handler: Callable[[T], Awaitable[R]],
        items: Iterable[T] | AsyncIterable[T],
        *,
        total: int | None = None,
    ) -> AsyncIterator[R]:
        """`handler` over `items` with the configured concurrency, results as they complete."""
        runner = Runner(
            self.settings.max_concurrency, on_progress=self._on_progress, progress_every_s=PROGRESS_EVERY_S
        )
        async for result in runner.map(handler, items, ordered=False, total=total):
            yield result

    def on_record(self, record: CallRecord) -> None:
        self._tally.add(record)

    def on_event(self, event: object) -> None:
        """Retry and breaker events: breaker changes matter to a person, retries only when debugging."""
        name = type(event).__name__
        if "Breaker" in name or "Circuit" in name:
            self._log.warning(f"{self.step}: {event}")
        else:
            self._log.debug(f"{self.step}: {event}")

    def _on_progress(self, progress: Progress) -> None:
        summary = self._tally.summary()
        total = f"/{progress.total}" if progress.total is not None else ""
        share = f" ({progress.done / progress.total:.0%})" if progress.total else ""
        eta = f", ETA {progress.eta_s:.0f}s" if progress.eta_s is not None else ""
        self._log.info(
            f"{self.step}: {progress.done}{total} documents{share}, {progress.rate_per_s:.1f}/s{eta} | "
            f"calls {summary.calls}, retries {summary.retries}, 429s {summary.rate_limited}, "
            f"errors {summary.errors}, ledger hits {summary.cached}"
        )

    def metadata(self, statuses: Mapping[str, int] | Counter[str]) -> dict[str, Any]:
        """What the UI shows for the step: documents by status, tokens, cost, latency, retries, time."""
        summary = self._tally.summary()
        wall = time.monotonic() - self._started
        documents = sum(statuses.values())
        return {
            "documents": documents,
            **{
                f"documents_{status}": int(statuses.get(status, 0))
                for status in ("ok", "error", "rejected", "skipped")
            },
            "model": self.model,
            "backend": self.backend,
            "calls": summary.calls,
            "ledger_hits": summary.cached,
            "fallback_answers": summary.fallback,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "cost_usd": dg.MetadataValue.float(summary.cost_usd) if summary.cost_usd is not None else None,
            "latency_p50_ms": _ms(summary.latency_p50_ms),
            "latency_p95_ms": _ms(summary.latency_p95_ms),
            "attempts": summary.attempts,
            "retries": summary.retries,
            "rate_limited_429s": summary.rate_limited,
            "wall_time_s": round(wall, 2),
            "documents_per_s": round(documents / wall, 2) if wall > 0 else None,
        }


def _ms(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
