"""Message Batches: accepted at once, answered later, results as JSONL at an absolute URL.

Timing model (all knobs on `SimulatorConfig`): the n requests of a batch finish at
`batch_processing_s * k / n` (k = 1..n, shuffled with the seeded RNG) after creation. The batch
ends when the last one finishes, or at `batch_expiry_s`, when every unfinished request becomes
`expired`; `batch_p_expired` also expires a seeded share of the others (the real API's "could not
get to it in time" under load), and `batch_p_errored` errors one. A cancel ends the batch at once:
requests not finished by then become `canceled`.
Like the real API, `request_counts` show everything as `processing` until the batch has ended,
item params are validated only then (an invalid item is `errored`, not the whole batch), and
results come in no particular order. Batch requests do not touch the Messages rate limits, but
their answers count in the per-request success counter.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llm_pipeline.simulator.config import SimulatorConfig
from llm_pipeline.simulator.messages import fingerprint
from llm_pipeline.simulator.stats import Stats
from llm_pipeline.simulator.wire import ApiError, dumps, new_id

__all__ = ["MAX_BATCH_REQUESTS", "BatchStore"]

MAX_BATCH_REQUESTS = 100_000
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_RESULT_KINDS = ("succeeded", "errored", "canceled", "expired")

#: Answers one validated batch item: (Message dict, usage); raises ApiError for an invalid one.
BatchAnswer = Callable[[Any], tuple[dict[str, Any], dict[str, Any]]]


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(eq=False)
class _Batch:
    id: str
    created_wall: float
    created_mono: float
    custom_ids: list[str]
    params: list[Any]
    finish_s: list[float]
    expiry_s: float
    #: Seconds after creation at which the batch ends on its own. Stored rather than derived on
    #: each retrieve/cancel/list because `finish_s` (up to 100,000 items) never changes.
    end_s: float = field(init=False)
    cancel_mono: float | None = None
    cancel_wall: float | None = None
    ended_wall: float | None = None
    results: list[bytes] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    timer: asyncio.TimerHandle | None = None

    def __post_init__(self) -> None:
        self.end_s = min(max(self.finish_s, default=0.0), self.expiry_s)


class BatchStore:
    def __init__(
        self,
        config: Callable[[], SimulatorConfig],
        answer: BatchAnswer,
        stats: Stats,
        rng: random.Random,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._answer = answer
        self._stats = stats
        self._rng = rng
        self._clock = clock
        self._wall = wall
        self._batches: dict[str, _Batch] = {}

    def close(self) -> None:
        for batch in self._batches.values():
            if batch.timer is not None:
                batch.timer.cancel()
        self._batches.clear()

    def create(self, body: Any, base_url: str) -> dict[str, Any]:
        requests = body.get("requests") if isinstance(body, Mapping) else None
        if not isinstance(requests, list) or not requests:
            raise ApiError(400, "requests: List should have at least 1 item")
        if len(requests) > MAX_BATCH_REQUESTS:
            raise ApiError(400, f"requests: List should have at most {MAX_BATCH_REQUESTS} items")
        custom_ids: list[str] = []
        seen: set[str] = set()
        for i, item in enumerate(requests):
            if not isinstance(item, Mapping) or not isinstance(item.get("params"), Mapping):
                raise ApiError(400, f"requests.{i}.params: Field required")
            custom_id = item.get("custom_id")
            if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
                raise ApiError(
                    400, f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )
            if custom_id in seen:
                raise ApiError(400, f"requests.{i}.custom_id: Duplicate custom_id {custom_id!r}")
            seen.add(custom_id)
            custom_ids.append(custom_id)
        config = self._config()
        n = len(requests)
        finish_s = [config.batch_processing_s * (k + 1) / n for k in range(n)]
        self._rng.shuffle(finish_s)
        batch = _Batch(
            id=new_id("msgbatch"),
            created_wall=self._wall(),
            created_mono=self._clock(),
            custom_ids=custom_ids,
            params=[item["params"] for item in requests],
            finish_s=finish_s,
            expiry_s=config.batch_expiry_s,
        )
        self._batches[batch.id] = batch
        self._stats.batch["created"] += 1
        self._stats.batch["requests"] += n
        batch.timer = asyncio.get_running_loop().call_later(batch.end_s, self._finish, batch)
        return self._view(batch, base_url)

    def _get(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise ApiError(404, f"message_batch: {batch_id} not found")
        if batch.results is None and self._clock() - batch.created_mono >= batch.end_s:
            self._finish(batch)
        return batch

    def retrieve(self, batch_id: str, base_url: str) -> dict[str, Any]:
        batch = self._get(batch_id)
        self._stats.batch["retrieved"] += 1
        return self._view(batch, base_url)

    def list(self, query: Mapping[str, str], base_url: str) -> dict[str, Any]:
        try:
            limit = int(query.get("limit", "20"))
        except ValueError as exc:
            raise ApiError(400, "limit: Input should be a valid integer") from exc
        if not 1 <= limit <= 1000:
            raise ApiError(400, "limit: Input should be between 1 and 1000")
        ordered = sorted(self._batches.values(), key=lambda b: b.created_mono, reverse=True)
        ids = [b.id for b in ordered]
        if "after_id" in query and query["after_id"] in ids:
            ordered = ordered[ids.index(query["after_id"]) + 1 :]
        elif "before_id" in query and query["before_id"] in ids:
            ordered = ordered[: ids.index(query["before_id"])][-limit:]
        page = [self._view(self._get(b.id), base_url) for b in ordered[:limit]]
        return {
            "data": page,
            "has_more": len(ordered) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }

    def cancel(self, batch_id: str, base_url: str) -> dict[str, Any]:
        batch = self._get(batch_id)
        if batch.results is None and batch.cancel_mono is None:
            batch.cancel_mono = self._clock()
            batch.cancel_wall = self._wall()
            if batch.timer is not None:
                batch.timer.cancel()
            batch.timer = asyncio.get_running_loop().call_soon(self._finish, batch)
        return self._view(batch, base_url)

    def delete(self, batch_id: str) -> dict[str, Any]:
        batch = self._get(batch_id)
        if batch.results is None:
            raise ApiError(400, f"Batch {batch_id} is still in progress; cancel it before deleting it")
        del self._batches[batch_id]
        return {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str) -> bytes:
        batch = self._get(batch_id)
        if batch.results is None:
            raise ApiError(404, f"results for message_batch {batch_id} are not available yet")
        return b"".join(batch.results)

    def _finish(self, batch: _Batch) -> None:
        if batch.results is not None:
            return
        config = self._config()
        cancel_s = None if batch.cancel_mono is None else batch.cancel_mono - batch.created_mono
        lines = []
        for custom_id, params, done_s in zip(batch.custom_ids, batch.params, batch.finish_s, strict=True):
            result, fp, usage = self._result(params, done_s, cancel_s, batch.expiry_s, config)
            batch.counts[result["type"]] += 1
            self._stats.batch_result(result["type"], fp, usage)
            lines.append(dumps({"custom_id": custom_id, "result": result}) + b"\n")
        self._rng.shuffle(lines)
        batch.results = lines
        batch.ended_wall = self._wall()
        batch.timer = None

    def _result(
        self, params: Any, done_s: float, cancel_s: float | None, expiry_s: float, config: SimulatorConfig
    ) -> tuple[dict[str, Any], str | None, dict[str, Any] | None]:
        if cancel_s is not None and done_s > cancel_s:
            return {"type": "canceled"}, None, None
        if done_s > expiry_s or (config.batch_p_expired and self._rng.random() < config.batch_p_expired):
            return {"type": "expired"}, None, None
        try:
            message, usage = self._answer(params)
        except ApiError as err:
            return {"type": "errored", "error": err.body(new_id("req"))}, None, None
        if config.batch_p_errored and self._rng.random() < config.batch_p_errored:
            error = ApiError(500, "Internal server error")
            return {"type": "errored", "error": error.body(new_id("req"))}, None, None
        return {"type": "succeeded", "message": message}, fingerprint(params), usage

    def _view(self, batch: _Batch, base_url: str) -> dict[str, Any]:
        ended = batch.results is not None
        if ended:
            counts = {kind: batch.counts[kind] for kind in _RESULT_KINDS}
            counts["processing"] = 0
        else:
            counts = dict.fromkeys(_RESULT_KINDS, 0)
            counts["processing"] = len(batch.custom_ids)
        status = "ended" if ended else ("canceling" if batch.cancel_mono is not None else "in_progress")
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "created_at": _iso(batch.created_wall),
            "expires_at": _iso(batch.created_wall + batch.expiry_s),
            "ended_at": _iso(batch.ended_wall),
            "cancel_initiated_at": _iso(batch.cancel_wall),
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }
