"""Message Batches through the real SDK: lifecycle, per-item errors, expiry, cancel, results."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic
import pytest

from llm_pipeline.simulator import Limits, fingerprint
from llm_pipeline_tests.fixtures.simulator_requests import Classification, fenced

MODEL = "claude-haiku-5-5"


def params(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": fenced(f"Report {n}: Acme Corp revenue and profit grew.")}],
        "tools": [{"name": "classify", "input_schema": Classification.model_json_schema()}],
        "tool_choice": {"type": "tool", "name": "classify"},
        **extra,
    }


def requests(n: int) -> list[dict[str, Any]]:
    return [{"custom_id": f"doc-{i}", "params": params(i)} for i in range(n)]


async def ended(client: anthropic.AsyncAnthropic, batch_id: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        batch = await client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended" or time.monotonic() > deadline:
            return batch
        await asyncio.sleep(0.05)


async def results(client: anthropic.AsyncAnthropic, batch_id: str) -> list[Any]:
    return [line async for line in await client.messages.batches.results(batch_id)]


async def test_batch_lifecycle_and_results(anthropic_client, simulator):
    batch = await anthropic_client.messages.batches.create(requests=requests(20))
    assert batch.id.startswith("msgbatch_")
    assert batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 20
    assert batch.results_url is None
    batch = await ended(anthropic_client, batch.id)
    assert batch.processing_status == "ended"
    assert batch.request_counts.succeeded == 20
    assert batch.request_counts.processing == 0
    assert batch.ended_at is not None
    assert batch.results_url == f"{simulator.base_url}/v1/messages/batches/{batch.id}/results"
    lines = await results(anthropic_client, batch.id)
    ids = [line.custom_id for line in lines]
    assert sorted(ids) == sorted(f"doc-{i}" for i in range(20))
    assert ids != [f"doc-{i}" for i in range(20)]  # not in request order: match by custom_id
    for line in lines:
        assert line.result.type == "succeeded"
        assert line.result.message.usage.service_tier == "batch"
        Classification.model_validate(line.result.message.content[0].input)


async def test_batch_answers_equal_messages_answers_and_count_per_request(anthropic_client, simulator):
    batch = await anthropic_client.messages.batches.create(requests=requests(2))
    await ended(anthropic_client, batch.id)
    by_id = {line.custom_id: line.result.message for line in await results(anthropic_client, batch.id)}
    direct = await anthropic_client.messages.create(**params(0))
    assert by_id["doc-0"].content[0].input == direct.content[0].input
    stats = simulator.control.stats()
    assert stats["per_request"][fingerprint(params(0))] == 2
    assert stats["per_request"][fingerprint(params(1))] == 1
    assert stats["batch"]["requests_succeeded"] == 2
    assert stats["successes"] == 1  # the Messages figures count only the direct call


async def test_invalid_items_error_alone(anthropic_client):
    items = [
        *requests(2),
        {"custom_id": "bad-model", "params": params(9, model="claude-nope")},
        {"custom_id": "bad-tokens", "params": params(9, max_tokens=0)},
    ]
    batch = await ended(anthropic_client, (await anthropic_client.messages.batches.create(requests=items)).id)
    assert (batch.request_counts.succeeded, batch.request_counts.errored) == (2, 2)
    errors = {
        line.custom_id: line.result.error.error.type
        for line in await results(anthropic_client, batch.id)
        if line.result.type == "errored"
    }
    assert errors == {"bad-model": "not_found_error", "bad-tokens": "invalid_request_error"}


@pytest.mark.parametrize(
    "items",
    [
        [],
        [{"custom_id": "same", "params": params(0)}, {"custom_id": "same", "params": params(1)}],
        [{"custom_id": "no spaces allowed", "params": params(0)}],
    ],
)
async def test_invalid_batches_are_rejected_whole(anthropic_client, items):
    with pytest.raises(anthropic.BadRequestError):
        await anthropic_client.messages.batches.create(requests=items)


async def test_processing_time_and_expiry(anthropic_client, simulator):
    # 4 requests finish at 0.5, 1.0, 1.5, 2.0 s; those after 1.0 s expire.
    simulator.control.configure(batch_processing_s=2.0, batch_expiry_s=1.0)
    batch = await anthropic_client.messages.batches.create(requests=requests(4))
    assert (await anthropic_client.messages.batches.retrieve(batch.id)).processing_status == "in_progress"
    batch = await ended(anthropic_client, batch.id)
    counts = batch.request_counts
    assert (counts.succeeded, counts.expired, counts.errored, counts.canceled) == (2, 2, 0, 0)
    kinds = sorted(line.result.type for line in await results(anthropic_client, batch.id))
    assert kinds == ["expired", "expired", "succeeded", "succeeded"]


async def test_cancel(anthropic_client, simulator):
    simulator.control.configure(batch_processing_s=3600)
    batch = await anthropic_client.messages.batches.create(requests=requests(3))
    canceling = await anthropic_client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling"
    assert canceling.cancel_initiated_at is not None
    batch = await ended(anthropic_client, batch.id)
    assert batch.request_counts.canceled == 3
    assert {line.result.type for line in await results(anthropic_client, batch.id)} == {"canceled"}


async def test_errored_probability(anthropic_client, simulator):
    simulator.control.configure(batch_p_errored=1.0)
    batch = await ended(
        anthropic_client, (await anthropic_client.messages.batches.create(requests=requests(3))).id
    )
    assert batch.request_counts.errored == 3
    types = {line.result.error.error.type for line in await results(anthropic_client, batch.id)}
    assert types == {"api_error"}


async def test_list_newest_first_with_pagination(anthropic_client):
    created = [(await anthropic_client.messages.batches.create(requests=requests(1))).id for _ in range(3)]
    page = await anthropic_client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == created[::-1][:2]
    assert page.has_more
    assert [b.id async for b in anthropic_client.messages.batches.list(limit=2)] == created[::-1]


async def test_delete_and_not_found(anthropic_client, simulator):
    simulator.control.configure(batch_processing_s=3600)
    batch = await anthropic_client.messages.batches.create(requests=requests(1))
    with pytest.raises(anthropic.BadRequestError):
        await anthropic_client.messages.batches.delete(batch.id)
    await anthropic_client.messages.batches.cancel(batch.id)
    await ended(anthropic_client, batch.id)
    deleted = await anthropic_client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        await anthropic_client.messages.batches.retrieve(batch.id)


async def test_batches_do_not_draw_on_the_messages_rate_limits(anthropic_client, simulator):
    simulator.control.configure(limits=Limits(rpm=60, otpm=300, burst_seconds=1))
    batch = await ended(
        anthropic_client, (await anthropic_client.messages.batches.create(requests=requests(10))).id
    )
    assert batch.request_counts.succeeded == 10
    await anthropic_client.messages.create(**params(0, max_tokens=5))


async def test_faults_reach_batch_endpoints_too(anthropic_client, simulator):
    simulator.control.set_faults(p500=1.0)
    with pytest.raises(anthropic.InternalServerError):
        await anthropic_client.messages.batches.create(requests=requests(1))


async def test_expired_probability_and_poll_counter(anthropic_client, simulator):
    simulator.control.configure(batch_p_expired=1.0)
    batch = await ended(
        anthropic_client, (await anthropic_client.messages.batches.create(requests=requests(3))).id
    )
    assert (batch.request_counts.expired, batch.request_counts.succeeded) == (3, 0)
    assert {line.result.type for line in await results(anthropic_client, batch.id)} == {"expired"}
    stats = simulator.control.stats()
    assert stats["batch"]["requests_expired"] == 3
    assert stats["batch"]["retrieved"] >= 1
    assert stats["per_request"] == {}, "an expired request was never answered"
