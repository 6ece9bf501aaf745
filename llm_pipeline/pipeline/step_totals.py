"""What one step's call stack reports, turned into Dagster run-log lines and materialization metadata.

The call stack reports through frozen records and events (STYLE habit 14); `StepTotals` is where
they become log lines and metadata. Progress goes to the run log at most every few seconds:
done/total, rate, ETA, retries, 429s, errors and ledger hits, so a person watching a long step
knows whether it is healthy without opening anything else.

Rate limits: the limits each model is paced at, and where each came from (the API's headers, a
configured cap, or the conservative default), go to the run log when the step first uses the
model and whenever they change; a server without rate-limit headers, and a header value that is
not a usable number, are warnings. The last limits in effect per model are in the metadata.

Batch mode: each batch submitted, resumed and ended is logged, the waiting at most every few
seconds, and a canceled batch as a warning. The metadata adds the batch ids and result counts, and
prices the saving: `cost_usd` is what was billed, `cost_usd_at_list_price` what real-time calls
would have cost, `saved_usd` the difference.

Prompt cache: `cache_hit_ratio` (billed answers that read the shared prefix from the cache),
`cache_read_tokens` and `cache_write_tokens`, and `cache_saved_usd`, what the cache saved against
the same calls with every prompt token at the input price (writes that were never read show as a
negative saving).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import dagster as dg

from llm_pipeline.claude import ClaudeSettings, Progress
from llm_pipeline.claude.batch_events import (
    BatchCanceled,
    BatchEnded,
    BatchLost,
    BatchProgress,
    BatchResumed,
    BatchSubmitted,
)
from llm_pipeline.claude.batches import BatchReport
from llm_pipeline.claude.breaker import BreakerEvent
from llm_pipeline.claude.limits import BadRateLimitHeader, LimitsChanged, LimitsInEffect, NoRateLimitHeaders
from llm_pipeline.claude.metrics import CallRecord, Summary, Tally
from llm_pipeline.claude.pricing import BATCH_DISCOUNT
from llm_pipeline.claude.stack import SpoolReplayed
from llm_pipeline.pipeline.metadata import usage_metadata
from llm_pipeline.warehouse.tables import STATUSES

__all__ = ["PROGRESS_EVERY_S", "StepTotals"]

#: Seconds between progress lines in the run log.
PROGRESS_EVERY_S = 5.0


class StepTotals:
    """The running totals of one step: fed by the call stack's sinks, read for the log and the UI."""

    def __init__(
        self, *, step: str, log: logging.Logger | Any, settings: ClaudeSettings, backend: str, model: str
    ) -> None:
        self.step = step
        self.settings = settings
        self.backend = backend
        self.model = model
        self._log = log
        self._tally = Tally()
        self._started = time.monotonic()
        self._batches = BatchReport()
        self._batch_answers = 0
        self._batch_cost = 0.0
        self._canceled_batches: list[str] = []
        self._last_batch_progress = float("-inf")
        #: The limits in effect per model, as last reported by the call stack.
        self._limits: dict[str, LimitsInEffect] = {}

    def merge(self, report: BatchReport) -> None:
        """Add one prefetch's batch report, and say what it did in the run log."""
        total = self._batches
        total.batch_ids += report.batch_ids
        total.submitted += report.submitted
        total.resumed += report.resumed
        total.requests += report.requests
        total.already_answered += report.already_answered
        total.results.update(report.results)
        total.left_for_realtime += report.left_for_realtime
        self._log.info(
            f"{self.step}: batch prefetch done: {report.submitted} submitted, {report.resumed} resumed, "
            f"{report.requests} requests sent, {report.already_answered} already in the ledger, results "
            f"{dict(sorted(report.results.items()))}, {report.left_for_realtime} left to real-time calls"
        )

    def on_record(self, record: CallRecord) -> None:
        self._tally.add(record)
        if record.batch:
            self._batch_answers += 1
            self._batch_cost += record.cost_usd or 0.0

    def on_event(self, event: object) -> None:
        """Breaker changes, lost batch answers and replayed spooled answers matter to a person; batch
        steps are progress; retries only matter when debugging."""
        if isinstance(event, BatchCanceled):
            self._canceled_batches.append(event.batch_id)
        if isinstance(event, LimitsChanged | NoRateLimitHeaders):
            self._limits[event.limits.model] = event.limits
        if isinstance(event, LimitsChanged):
            self._log.info(f"{self.step}: {event}")
        elif isinstance(
            event,
            BreakerEvent
            | BatchCanceled
            | BatchLost
            | SpoolReplayed
            | NoRateLimitHeaders
            | BadRateLimitHeader,
        ):
            self._log.warning(f"{self.step}: {event}")
        elif isinstance(event, BatchProgress):
            now = time.monotonic()
            if now - self._last_batch_progress >= PROGRESS_EVERY_S:
                self._last_batch_progress = now
                self._log.info(f"{self.step}: {event}")
        elif isinstance(event, BatchSubmitted | BatchResumed | BatchEnded):
            self._log.info(f"{self.step}: {event}")
        else:
            self._log.debug(f"{self.step}: {event}")

    def on_progress(self, progress: Progress) -> None:
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
            **{f"documents_{status}": int(statuses.get(status, 0)) for status in STATUSES},
            "model": self.model,
            "backend": self.backend,
            "calls": summary.calls,
            "ledger_hits": summary.cached,
            "fallback_answers": summary.fallback,
            "input_tokens": summary.input_tokens,
            "output_tokens": summary.output_tokens,
            "cost_usd": dg.MetadataValue.float(summary.cost_usd) if summary.cost_usd is not None else None,
            **self._saving(summary.cost_usd),
            **_cache_metadata(summary),
            "latency_p50_ms": _ms(summary.latency_p50_ms),
            "latency_p95_ms": _ms(summary.latency_p95_ms),
            "attempts": summary.attempts,
            "retries": summary.retries,
            "rate_limited_429s": summary.rate_limited,
            **usage_metadata(summary.by_model),
            "wall_time_s": round(wall, 2),
            "documents_per_s": round(documents / wall, 2) if wall > 0 else None,
            **self._limits_metadata(),
            **self._batch_metadata(),
        }

    def _limits_metadata(self) -> dict[str, Any]:
        """The limits in effect at the end, per model, with their sources; flat for the step's model."""
        if not self._limits:
            return {}
        ours = self._limits.get(self.model) or next(iter(self._limits.values()))
        flat: dict[str, Any] = {
            f"rate_limit_{name}": rate for name, rate in zip(("rpm", "itpm", "otpm"), ours.rates, strict=True)
        }
        flat["rate_limit_burst_s"] = round(ours.burst_s, 2)
        flat["rate_limit_sources"] = ", ".join(
            f"{name} {source}"
            for name, source in zip(
                ("rpm", "itpm", "otpm", "burst"), (*ours.sources, ours.burst_source), strict=True
            )
        )
        return {
            "rate_limits": dg.MetadataValue.json(
                {m: limits.as_metadata() for m, limits in self._limits.items()}
            ),
            **flat,
        }

    def _saving(self, billed: float | None) -> dict[str, Any]:
        """What real-time calls would have cost (batch answers at list price) and the difference."""
        if billed is None:
            return {"cost_usd_at_list_price": None, "saved_usd": None}
        saved = self._batch_cost / BATCH_DISCOUNT - self._batch_cost
        return {
            "cost_usd_at_list_price": dg.MetadataValue.float(round(billed + saved, 6)),
            "saved_usd": dg.MetadataValue.float(round(saved, 6)),
        }

    def _batch_metadata(self) -> dict[str, Any]:
        if self.settings.mode != "batch":
            return {"mode": "realtime"}
        report = self._batches
        return {
            "mode": "batch",
            "batch_ids": dg.MetadataValue.json(report.batch_ids),
            "batches_submitted": report.submitted,
            "batches_resumed": report.resumed,
            "batch_requests": report.requests,
            **{
                f"batch_{kind}": report.results[kind]
                for kind in ("succeeded", "errored", "expired", "canceled")
            },
            "batches_canceled": dg.MetadataValue.json(self._canceled_batches),
            "batch_answers": self._batch_answers,
            "batch_left_for_realtime": report.left_for_realtime,
        }


def _cache_metadata(summary: Summary) -> dict[str, Any]:
    """The prompt cache's effect: how often the shared prefix was read, how much of it, what it saved."""
    ratio, saved = summary.cache_hit_ratio, summary.cache_saved_usd
    return {
        "cache_hit_ratio": round(ratio, 4) if ratio is not None else None,
        "cache_read_tokens": summary.cache_read_input_tokens,
        "cache_write_tokens": summary.cache_creation_input_tokens,
        "cache_saved_usd": dg.MetadataValue.float(saved) if saved is not None else None,
    }


def _ms(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
