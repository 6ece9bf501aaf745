"""Batch mode: prefetch a step's answers into the ledger through the Message Batches API (issue 7).

    requests ─► skip what the ledger answers, resume pending batches that hold the rest
             ─► split (≤ 100,000 requests, ≤ 256 MB per batch; `batch_plan.py`) ─► create
             ─► RECORD {batch id → custom ids, ledger keys} in the state ─► poll with backoff
             ─► ended: stream the results JSONL ─► ledger.put every succeeded answer ─► forget it
             ─► errored (transient) and expired: a new, smaller batch (`batch_retry="batch"`, at most
                `batch_retry_rounds` times) or the real-time flow; canceled: reported, real-time flow

The step then runs its ordinary per-document flow, which finds the answers in the ledger. Answers
collected by this run are handed to `on_answer`, and `Client.call` reports them as fresh batch calls
(`cached=False`, `batch=True`, priced at the batch discount) instead of free ledger hits. Whatever
the batches did not answer (errors, expiry after the last round, cancellation) is simply missing
from the ledger, so the per-document flow calls it in real time, limiter and retries included.

`custom_id` is the request's fingerprint (64 hex characters: exactly what `^[a-zA-Z0-9_-]{1,64}$`
allows), so any document id works, identical requests are sent once, and the mapping is stable
across runs without a table.

Durability: a batch is recorded in the state right after `create` returns, before anything waits
on it, so a run killed while polling leaves its ids behind and the next run resumes those batches
instead of paying for them again. (Killed in the milliseconds between the API accepting a batch
and the record being written, a run would resubmit those requests once.) A batch not ended by
`batch_deadline_s` fails the step with its id; it stays recorded, and a later run picks it up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anthropic
from anthropic.types.messages import MessageBatch, MessageBatchErroredResult, MessageBatchSucceededResult

from llm_pipeline.claude.batch_events import (
    BatchAnswer,
    BatchCanceled,
    BatchDeadlineExceeded,
    BatchEnded,
    BatchLost,
    BatchPollFailed,
    BatchProgress,
    BatchResumed,
    BatchSubmitted,
)
from llm_pipeline.claude.batch_plan import Chunk, Chunker, next_poll_delay, triage
from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.errors import BadRequest, RetryableError
from llm_pipeline.claude.ledger import Ledger
from llm_pipeline.claude.retry import RetryPolicy
from llm_pipeline.claude.sdk_errors import map_sdk_errors
from llm_pipeline.claude.settings import ClaudeSettings
from llm_pipeline.claude.state.base import BatchStore, PendingBatch
from llm_pipeline.claude.types import Request

__all__ = ["BatchAnswer", "BatchDeadlineExceeded", "BatchPrefetcher", "BatchReport"]

T = TypeVar("T")
#: Uploading up to 256 MB takes longer than one Messages call may.
_CREATE_TIMEOUT_S = 600.0


@dataclass(slots=True)
class BatchReport:
    """What one prefetch did, for the step's metadata."""

    batch_ids: list[str] = field(default_factory=list)
    submitted: int = 0
    resumed: int = 0
    #: Requests sent in batches this run (retries included), and those already in the ledger.
    requests: int = 0
    already_answered: int = 0
    results: Counter[str] = field(default_factory=Counter)
    #: Requests with no batch answer at the end, left to the real-time per-document flow.
    left_for_realtime: int = 0


class BatchPrefetcher:
    """One prefetch over one step's requests; built by `Client.prefetch`."""

    def __init__(
        self,
        settings: ClaudeSettings,
        *,
        sdk: anthropic.AsyncAnthropic,
        store: BatchStore,
        ledger: Ledger,
        retry: RetryPolicy,
        clock: Clock,
        on_answer: Callable[[str, BatchAnswer], None],
        on_event: Callable[[object], None] | None = None,
        also_models: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self._sdk = sdk
        self._store = store
        self._ledger = ledger
        self._retry = retry
        self._clock = clock
        self._on_answer = on_answer
        self._on_event = on_event
        self._also_models = tuple(also_models)
        self.report = BatchReport()
        self._wanted: set[str] = set()
        self._answered: set[str] = set()

    async def run(self, requests: Callable[[], Iterable[Request]]) -> BatchReport:
        """Prefetch answers for `requests()`; called again (one pass per retry round) when needed,
        so the partition never has to be held in memory."""
        deadline = self._clock.now() + self.settings.batch_deadline_s
        active = await self._first_round(requests)
        retry = await self._wait(active, deadline)
        for retry_round in range(1, self.settings.batch_retry_rounds + 1):
            if self.settings.batch_retry != "batch" or not retry:
                break
            chunker = self._chunker()
            active = {}
            for request in requests():
                key = self._ledger.entry_key(request)
                if key in retry:
                    retry.discard(key)
                    active.update(await self._submit_full(chunker.add(request, key), retry_round))
            active.update(await self._submit_full(chunker.flush(), retry_round))
            retry = await self._wait(active, deadline)
        self.report.left_for_realtime = len(self._wanted - self._answered)
        return self.report

    async def _first_round(self, requests: Callable[[], Iterable[Request]]) -> dict[str, PendingBatch]:
        """Resume pending batches holding any of `requests`; submit what neither they nor the ledger cover."""
        holder = {
            item.fingerprint: b for b in await self._store.pending(self._ledger.namespace) for item in b.items
        }
        active: dict[str, PendingBatch] = {}
        seen: set[str] = set()
        chunker = self._chunker()
        for request in requests():
            key = self._ledger.entry_key(request)
            if key in seen:
                continue
            seen.add(key)
            pending = holder.get(key)
            if pending is not None:
                self._wanted.add(key)
                if pending.batch_id not in active:
                    active[pending.batch_id] = pending
                    self.report.resumed += 1
                    self.report.batch_ids.append(pending.batch_id)
                    self._emit(BatchResumed(pending.batch_id, len(pending.items)))
                continue
            if await self._ledger.get(request, also_models=self._also_models, entry_key=key) is not None:
                self.report.already_answered += 1
                continue
            self._wanted.add(key)
            active.update(await self._submit_full(chunker.add(request, key), 0))
        active.update(await self._submit_full(chunker.flush(), 0))
        return active

    def _chunker(self) -> Chunker:
        return Chunker(max_requests=self.settings.batch_max_requests, max_bytes=self.settings.batch_max_bytes)

    async def _submit_full(self, chunk: Chunk | None, retry_round: int) -> dict[str, PendingBatch]:
        if chunk is None:
            return {}
        created = await self._api(
            lambda: self._sdk.messages.batches.create(
                requests=chunk.payload,  # type: ignore[arg-type]
                timeout=max(self.settings.timeout_s, _CREATE_TIMEOUT_S),
            ),
            "create",
        )
        batch = PendingBatch(created.id, self._ledger.namespace, self._clock.wall(), tuple(chunk.items))
        await self._store.record(batch)  # before anything waits on it: from here on a crash resumes it
        self.report.submitted += 1
        self.report.requests += len(chunk)
        self.report.batch_ids.append(batch.batch_id)
        self._emit(BatchSubmitted(batch.batch_id, len(chunk), chunk.size_bytes, retry_round))
        return {batch.batch_id: batch}

    async def _wait(self, active: dict[str, PendingBatch], deadline: float) -> set[str]:
        """Poll until every batch in `active` has ended and been collected; the keys worth retrying."""
        retry: set[str] = set()
        delay, began, total = self.settings.batch_poll_s, self._clock.now(), len(active)
        while active:
            processing = 0
            for batch_id, batch in list(active.items()):
                try:
                    status = await self._api(
                        lambda b=batch_id: self._sdk.messages.batches.retrieve(b), batch_id
                    )
                except RetryableError as exc:
                    self._emit(BatchPollFailed(batch_id, str(exc)))
                    continue
                except BadRequest as exc:
                    if exc.status_code != 404:
                        raise
                    await self._store.finish(batch_id)
                    del active[batch_id]
                    self._emit(BatchLost(batch_id, str(exc)))
                    continue
                if status.processing_status == "ended":
                    retry |= await self._collect(batch, status)
                    del active[batch_id]
                else:
                    processing += status.request_counts.processing
            now = self._clock.now()
            if not active:
                break
            if now >= deadline:
                raise BatchDeadlineExceeded(sorted(active), self.settings.batch_deadline_s)
            wait = min(delay, deadline - now)
            self._emit(BatchProgress(total - len(active), total, processing, now - began, wait))
            await self._clock.sleep(wait)
            delay = next_poll_delay(delay, self.settings.batch_poll_max_s)
        return retry

    async def _collect(self, batch: PendingBatch, status: MessageBatch) -> set[str]:
        """Stream an ended batch's results into the ledger, then forget the batch."""
        items = {item.custom_id: item for item in batch.items}
        ended = status.ended_at or status.created_at
        latency_ms = max(0.0, (ended - status.created_at).total_seconds() * 1000.0)
        answer = BatchAnswer(batch.batch_id, latency_ms)

        async def read() -> tuple[Counter[str], set[str]]:
            counts: Counter[str] = Counter()
            retry: set[str] = set()
            async for line in await self._sdk.messages.batches.results(batch.batch_id):
                item = items.get(line.custom_id)
                if item is None:
                    continue
                result = line.result
                counts[result.type] += 1
                if isinstance(result, MessageBatchSucceededResult):
                    await self._ledger.put_answer(
                        item.fingerprint, key=item.key, model=item.model, message=result.message
                    )
                    self._answered.add(item.fingerprint)
                    self._on_answer(item.fingerprint, answer)
                    continue
                error_type = (
                    result.error.error.type if isinstance(result, MessageBatchErroredResult) else None
                )
                if triage(result.type, error_type) == "retry":
                    retry.add(item.fingerprint)
            return counts, retry

        counts, retry = await self._api(read, batch.batch_id)
        await self._store.finish(batch.batch_id)
        self.report.results.update(counts)
        ended_event = BatchEnded(
            batch.batch_id, counts["succeeded"], counts["errored"], counts["expired"], counts["canceled"]
        )
        self._emit(ended_event)
        if counts["canceled"]:
            self._emit(BatchCanceled(batch.batch_id, counts["canceled"]))
        return retry & self._wanted

    async def _api(self, fn: Callable[[], Awaitable[T]], what: str) -> T:
        """One Batches API operation: SDK errors mapped, transient ones retried with backoff."""

        async def attempt() -> T:
            with map_sdk_errors(self._clock.wall, timeout_s=self.settings.timeout_s):
                return await fn()

        return await self._retry.call(attempt, key=what, model="message_batches")

    def _emit(self, event: Any) -> None:
        if self._on_event is not None:
            self._on_event(event)
