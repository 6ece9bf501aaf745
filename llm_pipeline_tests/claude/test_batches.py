"""Batch mode in the call stack against the simulator: prefetch, splitting, resume, retries, deadline.

Each test prefetches through `Client.prefetch` and then makes the ordinary calls, as a step does, and
checks both what the client reports and the simulator's ground truth (batches created, Messages
calls made, successes per distinct request).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anthropic
import pytest

from llm_pipeline.claude import CallRecord, ClaudeSettings, Request, Runner, open_client
from llm_pipeline.claude.batch_events import (
    BatchCanceled,
    BatchDeadlineExceeded,
    BatchEnded,
    BatchProgress,
    BatchResumed,
    BatchSubmitted,
)
from llm_pipeline.claude.batch_plan import ENVELOPE_BYTES
from llm_pipeline.claude.batches import BatchReport
from llm_pipeline.claude.pricing import cost
from llm_pipeline.simulator import Simulator, fingerprint
from llm_pipeline_tests.fixtures.claude_calls import request, settings

POLL = {"batch_poll_s": 0.05, "batch_poll_max_s": 0.2}


def batch_settings(simulator: Simulator, **overrides: Any) -> ClaudeSettings:
    return settings(simulator.base_url, mode="batch", **{**POLL, **overrides})


async def prefetch_and_call(
    config: ClaudeSettings, requests: Sequence[Request], events: list[object] | None = None
) -> tuple[BatchReport, list[CallRecord]]:
    """What a step does: prefetch, then the ordinary call for every request."""
    records: list[CallRecord] = []
    sink = events.append if events is not None else None
    async with open_client(config, on_record=records.append, on_event=sink) as client:
        report = await client.prefetch(lambda: requests)
        await Runner(8).run(client.call, requests)
    return report, records


def of(events: list[object], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def test_prefetched_answers_are_batch_calls_at_half_price_and_no_messages_call_is_made(
    simulator: Simulator,
) -> None:
    requests = [request(i) for i in range(20)]
    report, records = await prefetch_and_call(batch_settings(simulator), requests)
    assert (report.submitted, report.requests, report.results["succeeded"]) == (1, 20, 20)
    assert report.left_for_realtime == 0
    stats = simulator.control.stats()
    assert stats["batch"]["created"] == 1
    assert stats["attempts"] == 0, "a prefetched request was also sent to the Messages API"
    assert stats["max_successes_per_request"] == 1
    assert len(records) == 20
    for record in records:
        assert (record.batch, record.cached, record.outcome, record.attempts) == (True, False, "ok", 1)
        usage = {"input_tokens": record.input_tokens, "output_tokens": record.output_tokens}
        assert record.cost_usd == pytest.approx(cost(record.model or "", usage) / 2)
        assert record.request_id == report.batch_ids[0]


async def test_a_second_call_for_the_same_request_is_a_free_ledger_hit(simulator: Simulator) -> None:
    records: list[CallRecord] = []
    async with open_client(batch_settings(simulator), on_record=records.append) as client:
        await client.prefetch(lambda: [request(1)])
        await client.call(request(1))
        await client.call(request(1))
    assert [(r.batch, r.cached, r.cost_usd == 0) for r in records] == [
        (True, False, False),
        (False, True, True),
    ]


async def test_requests_already_in_the_ledger_are_not_submitted(simulator: Simulator, tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    async with open_client(settings(simulator.base_url, state=state)) as client:
        await Runner(4).run(client.call, [request(i) for i in range(5)])
    report, records = await prefetch_and_call(
        batch_settings(simulator, state=state), [request(i) for i in range(10)]
    )
    assert (report.already_answered, report.requests) == (5, 5)
    assert sorted((r.cached, r.batch) for r in records) == [(False, True)] * 5 + [(True, False)] * 5
    assert simulator.control.stats()["max_successes_per_request"] == 1


def item_bytes(r: Request) -> int:
    """What the splitter counts for one request (see `batch_plan`)."""
    return len(json.dumps({"custom_id": "f" * 64, "params": dict(r.params)}).encode()) + 1


@pytest.mark.parametrize("by", ["count", "size"])
async def test_requests_are_split_to_respect_the_batch_limits(simulator: Simulator, by: str) -> None:
    requests = [request(i) for i in range(20)]
    largest = max(item_bytes(r) for r in requests)
    limits = {"batch_max_requests": 7} if by == "count" else {"batch_max_bytes": ENVELOPE_BYTES + 2 * largest}
    events: list[object] = []
    report, records = await prefetch_and_call(batch_settings(simulator, **limits), requests, events)
    sizes = [e.requests for e in of(events, BatchSubmitted)]
    assert sizes == ([7, 7, 6] if by == "count" else [2] * 10)
    assert report.submitted == simulator.control.stats()["batch"]["created"] == len(sizes)
    assert all(e.size_bytes <= limits.get("batch_max_bytes", 10**9) for e in of(events, BatchSubmitted))
    assert all(r.batch for r in records)


async def test_a_request_too_large_for_any_batch_goes_the_real_time_way(simulator: Simulator) -> None:
    small, large = request(1), request(2, chars=5000)
    config = batch_settings(simulator, batch_max_bytes=ENVELOPE_BYTES + 2 * item_bytes(small))
    report, records = await prefetch_and_call(config, [small, large])
    assert (report.requests, report.left_for_realtime) == (1, 1)
    assert [(r.key, r.batch) for r in records] == [("doc-1", True), ("doc-2", False)]
    assert simulator.control.stats()["successes"] == 1


async def test_custom_ids_are_fingerprints_so_any_doc_id_works_and_duplicates_go_once(
    simulator: Simulator,
) -> None:
    odd = Request(key="a doc id with spaces, ü and / that no custom_id allows", params=request(1).params)
    twin = Request(key="another id, same request", params=request(1).params)
    report, records = await prefetch_and_call(batch_settings(simulator), [odd, twin, request(2)])
    assert report.requests == 2
    stats = simulator.control.stats()
    assert set(stats["per_request"]) == {fingerprint(request(1).params), fingerprint(request(2).params)}
    assert [(r.key, r.batch, r.cached) for r in records] == [
        (odd.key, True, False),
        (twin.key, False, True),  # the same answer, paid once
        ("doc-2", True, False),
    ]


async def test_deadline_fails_with_the_batch_ids_and_a_later_prefetch_resumes_without_resubmitting(
    simulator: Simulator, tmp_path: Path
) -> None:
    simulator.control.configure(batch_processing_s=1.0)
    state = str(tmp_path / "state")
    requests = [request(i) for i in range(6)]
    events: list[object] = []
    async with open_client(
        batch_settings(simulator, state=state, batch_deadline_s=0.2), on_event=events.append
    ) as client:
        with pytest.raises(BatchDeadlineExceeded) as failed:
            await client.prefetch(lambda: requests)
    (submitted,) = of(events, BatchSubmitted)
    assert failed.value.batch_ids == (submitted.batch_id,)
    assert submitted.batch_id in str(failed.value)
    assert failed.value.systemic

    events.clear()
    report, records = await prefetch_and_call(batch_settings(simulator, state=state), requests, events)
    assert [e.batch_id for e in of(events, BatchResumed)] == [submitted.batch_id]
    assert (report.submitted, report.resumed, report.results["succeeded"]) == (0, 1, 6)
    stats = simulator.control.stats()
    assert stats["batch"]["created"] == 1, "the resumed batch was submitted again"
    assert stats["attempts"] == 0
    assert all(r.batch and not r.cached for r in records)


async def test_errored_results_are_left_to_real_time_calls(simulator: Simulator) -> None:
    simulator.control.configure(batch_p_errored=0.3)
    report, records = await prefetch_and_call(batch_settings(simulator), [request(i) for i in range(30)])
    errored = report.results["errored"]
    assert 0 < errored < 30
    assert report.left_for_realtime == errored
    stats = simulator.control.stats()
    assert stats["batch"]["created"] == 1
    assert stats["successes"] == errored, "each errored request is answered by one real-time call"
    assert stats["max_successes_per_request"] == 1
    assert all(r.outcome == "ok" for r in records)
    assert sum(r.batch for r in records) == 30 - errored


async def test_errored_and_expired_results_are_retried_in_smaller_batches(simulator: Simulator) -> None:
    simulator.control.configure(batch_p_errored=0.2, batch_p_expired=0.2)
    events: list[object] = []
    config = batch_settings(simulator, batch_retry="batch", batch_retry_rounds=2)
    report, records = await prefetch_and_call(config, [request(i) for i in range(40)], events)

    submitted, ended = of(events, BatchSubmitted), of(events, BatchEnded)
    assert [e.retry_round for e in submitted] == [0, 1, 2]
    for before, retry in zip(ended, submitted[1:], strict=False):
        assert retry.requests == before.errored + before.expired, "a retry batch holds exactly the failures"
    assert submitted[0].requests > submitted[1].requests > submitted[2].requests > 0
    stats = simulator.control.stats()
    assert stats["batch"]["created"] == 3
    assert stats["max_successes_per_request"] == 1
    assert (
        report.left_for_realtime == 40 - report.results["succeeded"] == ended[-1].errored + ended[-1].expired
    )
    assert stats["attempts"] == report.left_for_realtime, (
        "only what no batch answered was called in real time"
    )
    assert all(r.outcome == "ok" for r in records)


async def test_an_invalid_request_is_not_retried_in_a_batch_and_errors_as_in_real_time(
    simulator: Simulator,
) -> None:
    invalid = request(9, model="claude-nope")
    config = batch_settings(simulator, batch_retry="batch")
    report, records = await prefetch_and_call(config, [request(1), invalid])
    assert (report.results["errored"], report.left_for_realtime) == (1, 1)
    assert simulator.control.stats()["batch"]["created"] == 1
    assert [(r.outcome, r.error_type) for r in records] == [("ok", None), ("error", "ModelNotFound")]


async def test_a_canceled_batch_is_reported_and_its_requests_go_the_real_time_way(
    simulator: Simulator, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    simulator.control.configure(batch_processing_s=30.0)
    requests = [request(i) for i in range(5)]
    events: list[object] = []
    records: list[CallRecord] = []
    submitted = asyncio.Event()

    def on_event(event: object) -> None:
        events.append(event)
        if isinstance(event, BatchSubmitted):
            submitted.set()

    async with open_client(batch_settings(simulator), on_record=records.append, on_event=on_event) as client:
        prefetch = asyncio.create_task(client.prefetch(lambda: requests))
        await asyncio.wait_for(submitted.wait(), timeout=10)
        await anthropic_client.messages.batches.cancel(of(events, BatchSubmitted)[0].batch_id)
        report = await asyncio.wait_for(prefetch, timeout=10)
        await Runner(4).run(client.call, requests)
    assert report.results["canceled"] == 5
    assert [(e.batch_id, e.canceled) for e in of(events, BatchCanceled)] == [(report.batch_ids[0], 5)]
    assert "canceled" in str(of(events, BatchCanceled)[0])
    stats = simulator.control.stats()
    assert stats["batch"]["created"] == 1, "a canceled batch is never resubmitted"
    assert stats["successes"] == 5
    assert not any(r.batch for r in records)


async def test_polls_back_off_to_the_cap(simulator: Simulator) -> None:
    simulator.control.configure(batch_processing_s=0.8)
    events: list[object] = []
    await prefetch_and_call(
        batch_settings(simulator, batch_poll_s=0.04, batch_poll_max_s=0.09), [request(1)], events
    )
    waits = [e.next_poll_s for e in of(events, BatchProgress)]
    assert waits[:3] == pytest.approx([0.04, 0.06, 0.09])
    assert len(waits) >= 5
    assert all(wait == pytest.approx(0.09) for wait in waits[2:])
    assert simulator.control.stats()["batch"]["retrieved"] >= len(waits)


async def test_refresh_resubmits_and_uses_the_fresh_batch_answer(
    simulator: Simulator, tmp_path: Path
) -> None:
    state = str(tmp_path / "state")
    await prefetch_and_call(batch_settings(simulator, state=state), [request(1)])
    report, records = await prefetch_and_call(
        batch_settings(simulator, state=state, refresh=True), [request(1)]
    )
    assert report.requests == 1
    assert [(r.batch, r.cached) for r in records] == [(True, False)]
    assert simulator.control.stats()["attempts"] == 0


async def test_transient_faults_on_the_batch_endpoints_are_retried_and_nothing_is_paid_twice(
    simulator: Simulator,
) -> None:
    simulator.control.set_faults(p429=0.1, retry_after_s=0.05, p500=0.1, p529=0.1, p_drop=0.05)
    simulator.control.configure(batch_processing_s=0.3)
    events: list[object] = []
    report, records = await prefetch_and_call(
        batch_settings(simulator, batch_max_requests=4), [request(i) for i in range(12)], events
    )
    stats = simulator.control.stats()
    assert sum(stats["injected"].values()) > 0
    assert stats["batch"]["created"] == report.submitted == 3, "a failed create was retried into a duplicate"
    assert report.results["succeeded"] == 12
    assert all(r.batch and r.outcome == "ok" for r in records)
    assert stats["max_successes_per_request"] == 1
