"""Every fault switch, through the real SDK: the exception class the client sees, and the counters."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest
from pydantic import ValidationError

from llm_pipeline.simulator import ControlError, Faults, Latency, ScheduledFault, Simulator, SimulatorConfig
from llm_pipeline_tests.fixtures.simulator_requests import Classification, fenced

MODEL = "claude-haiku-5-5"


def request(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": fenced(f"Document number {n} about Acme Corp revenue.")}],
        **extra,
    }


def tool_request(n: int = 0) -> dict[str, Any]:
    return request(
        n,
        tools=[{"name": "classify", "input_schema": Classification.model_json_schema()}],
        tool_choice={"type": "tool", "name": "classify"},
    )


def json_request(n: int = 0) -> dict[str, Any]:
    schema = Classification.model_json_schema()
    return request(n, output_config={"format": {"type": "json_schema", "schema": schema}})


async def outcome(client: anthropic.AsyncAnthropic, n: int = 0) -> str:
    try:
        await client.messages.create(**request(n))
    except anthropic.APIStatusError as err:
        return str(err.status_code)
    return "ok"


async def test_injected_429_carries_a_readable_retry_after(anthropic_client, simulator):
    simulator.control.set_faults(p429=1.0, retry_after_s=2)
    with pytest.raises(anthropic.RateLimitError) as info:
        await anthropic_client.messages.create(**request())
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.body["error"]["type"] == "rate_limit_error"
    stats = simulator.control.stats()
    assert (stats["injected_429"], stats["limiter_429"]) == (1, 0)


@pytest.mark.parametrize(
    ("switch", "error", "error_type"),
    [
        ({"p500": 1.0}, anthropic.InternalServerError, "api_error"),
        ({"p529": 1.0}, anthropic.OverloadedError, "overloaded_error"),
        ({"outage": 500}, anthropic.InternalServerError, "api_error"),
        ({"outage": 529}, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_server_errors_map_to_the_sdk_classes(anthropic_client, simulator, switch, error, error_type):
    simulator.control.set_faults(**switch)
    with pytest.raises(error) as info:
        await anthropic_client.messages.create(**request())
    assert info.value.body["error"]["type"] == error_type
    if error is anthropic.InternalServerError:
        assert not isinstance(info.value, anthropic.OverloadedError)


async def test_outage_fails_every_endpoint_until_switched_back(anthropic_client, simulator):
    simulator.control.set_faults(outage=529)
    for _ in range(3):
        with pytest.raises(anthropic.OverloadedError):
            await anthropic_client.messages.create(**request())
    with pytest.raises(anthropic.OverloadedError):
        await anthropic_client.messages.count_tokens(model=MODEL, messages=request()["messages"])
    simulator.control.clear_faults()
    assert (await anthropic_client.messages.create(**request())).stop_reason == "end_turn"
    assert simulator.control.stats()["status_counts"] == {"200": 1, "529": 3}


async def test_dropped_connection_is_an_api_connection_error(anthropic_client, simulator):
    simulator.control.set_faults(p_drop=1.0)
    with pytest.raises(anthropic.APIConnectionError) as info:
        await anthropic_client.messages.create(**request())
    assert not isinstance(info.value, anthropic.APITimeoutError)
    stats = simulator.control.stats()
    assert stats["dropped"] == 1
    assert stats["successes"] == 0


async def test_hung_response_outlasts_the_client_timeout(anthropic_client, simulator):
    simulator.control.set_faults(p_hang=1.0)
    with pytest.raises(anthropic.APITimeoutError):
        await anthropic_client.messages.create(**request(), timeout=0.3)
    assert simulator.control.stats()["hung"] == 1
    for _ in range(200):
        if simulator.control.stats()["in_flight"] == 0:
            break
        await asyncio.sleep(0.05)
    assert simulator.control.stats()["in_flight"] == 0  # the abandoned handler was cancelled


async def test_stopping_the_server_ends_hung_requests_promptly():
    sim = Simulator(SimulatorConfig(faults=Faults(p_hang=1.0, hang_s=600))).start()
    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="k", max_retries=0, timeout=120)
    try:
        call = asyncio.create_task(client.messages.create(**request()))
        for _ in range(500):
            if sim.control.stats()["hung"]:
                break
            await asyncio.sleep(0.02)
        await asyncio.to_thread(sim.stop)
        with pytest.raises(anthropic.APIConnectionError):
            await asyncio.wait_for(call, timeout=60)  # far below hang_s and the client timeout
    finally:
        sim.stop()
        await client.close()


async def test_malformed_tool_input_breaks_the_schema(anthropic_client, simulator):
    simulator.control.set_faults(p_malformed=1.0)
    message = await anthropic_client.messages.create(**tool_request())
    with pytest.raises(ValidationError):
        Classification.model_validate(message.content[0].input)
    assert simulator.control.stats()["injected"]["malformed"] == 1


async def test_bad_json_output_does_not_parse(anthropic_client, simulator):
    simulator.control.set_faults(p_bad_json=1.0)
    message = await anthropic_client.messages.create(**json_request())
    with pytest.raises(json.JSONDecodeError):
        json.loads(message.content[0].text)


async def test_refusal(anthropic_client, simulator):
    simulator.control.set_faults(p_refusal=1.0)
    message = await anthropic_client.messages.create(**tool_request())
    assert message.stop_reason == "refusal"
    assert message.stop_details.type == "refusal"
    assert [b.type for b in message.content] == ["text"]


async def test_schedule_next_three_requests_get_429_with_retry_after_3(anthropic_client, simulator):
    await anthropic_client.messages.create(**request())  # before the schedule: not counted by it
    simulator.control.set_faults(schedule=[ScheduledFault("429", count=3, retry_after_s=3)])
    retry_afters = []
    for n in range(3):
        with pytest.raises(anthropic.RateLimitError) as info:
            await anthropic_client.messages.create(**request(n))
        retry_afters.append(info.value.response.headers["retry-after"])
    assert retry_afters == ["3", "3", "3"]
    assert (await anthropic_client.messages.create(**request())).stop_reason == "end_turn"


async def test_schedule_from_request_a_to_b(anthropic_client, simulator):
    simulator.control.set_faults(schedule=[ScheduledFault("500", after=2, count=2)])
    assert [await outcome(anthropic_client, n) for n in range(6)] == ["ok", "ok", "500", "500", "ok", "ok"]


async def test_schedule_time_windows(anthropic_client, simulator):
    simulator.control.set_faults(schedule=[ScheduledFault("529", count=None, start_s=3600)])
    assert await outcome(anthropic_client) == "ok"
    simulator.control.set_faults(schedule=[ScheduledFault("529", count=None, end_s=3600)])
    assert [await outcome(anthropic_client, n) for n in range(3)] == ["529", "529", "529"]


async def test_scheduled_output_faults_and_transport_faults(anthropic_client, simulator):
    simulator.control.set_faults(
        schedule=[
            ScheduledFault("refusal"),
            ScheduledFault("drop", after=1),
            ScheduledFault("malformed", after=2),
        ]
    )
    assert (await anthropic_client.messages.create(**tool_request())).stop_reason == "refusal"
    with pytest.raises(anthropic.APIConnectionError):
        await anthropic_client.messages.create(**tool_request())
    malformed = await anthropic_client.messages.create(**tool_request())
    with pytest.raises(ValidationError):
        Classification.model_validate(malformed.content[0].input)
    Classification.model_validate((await anthropic_client.messages.create(**tool_request())).content[0].input)


async def test_faults_can_be_confined_to_one_model(anthropic_client, simulator):
    """One model's outage while another answers: what a fallback-model test needs."""
    simulator.control.set_faults(outage=529, schedule=[ScheduledFault("500", count=1)], models=[MODEL])
    other = {**request(), "model": "claude-sonnet-5-5"}
    for _ in range(3):
        await anthropic_client.messages.create(**other)
    with pytest.raises(anthropic.OverloadedError):
        await anthropic_client.messages.create(**request())
    simulator.control.set_faults(schedule=[ScheduledFault("500", count=1)], models=[MODEL])
    await anthropic_client.messages.create(**other)  # not counted by the schedule
    with pytest.raises(anthropic.InternalServerError):
        await anthropic_client.messages.create(**request())
    await anthropic_client.messages.create(**request())


async def test_probabilities_are_seeded_and_reproducible(anthropic_client, simulator):
    async def pattern() -> list[str]:
        simulator.control.set_faults(p500=0.3, p529=0.2)
        return [await outcome(anthropic_client, n) for n in range(60)]

    first = await pattern()
    simulator.control.reset()  # re-seeds the RNG
    assert await pattern() == first
    assert 6 <= first.count("500") <= 30  # expected 18
    assert 3 <= first.count("529") <= 24  # expected 12
    assert first.count("ok") + first.count("500") + first.count("529") == 60


def test_fault_switches_are_validated(simulator):
    with pytest.raises(ValueError, match="sum"):
        Faults(p429=0.7, p500=0.7)
    with pytest.raises(ValueError, match="unknown fault kind"):
        ScheduledFault("teapot")
    with pytest.raises(ControlError, match="400"):
        simulator.control.set_faults(p429=2.0)


async def test_body_faults_are_billed_200s_whose_body_is_not_a_message(anthropic_client, simulator):
    """A cut JSON body, an HTML page and an unknown content block: all status 200, all billed."""
    simulator.control.set_faults(
        schedule=[
            ScheduledFault("truncated_body"),
            ScheduledFault("html_body", after=1),
            ScheduledFault("unknown_block", after=2),
        ]
    )
    raws = [await anthropic_client.messages.with_raw_response.create(**request(n)) for n in range(3)]
    assert [raw.http_response.status_code for raw in raws] == [200, 200, 200]
    truncated, html, unknown = [await raw.read() for raw in raws]
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated)
    assert raws[1].http_response.headers["content-type"].startswith("text/html")
    assert html.startswith(b"<!DOCTYPE html>")
    assert json.loads(unknown)["content"][0]["type"] == "hologram"
    stats = simulator.control.stats()
    assert stats["successes"] == 3, "the server did the work: billed like any answer"
    assert {k: stats["injected"][k] for k in ("truncated_body", "html_body", "unknown_block")} == {
        "truncated_body": 1,
        "html_body": 1,
        "unknown_block": 1,
    }


@pytest.mark.parametrize("billed", [False, True])
async def test_a_client_that_leaves_mid_answer_is_abandoned_and_billed_when_switched_on(
    anthropic_client, simulator, billed
):
    simulator.control.configure(latency=Latency(median_s=5.0), bill_abandoned=billed)
    with pytest.raises(anthropic.APITimeoutError):
        await anthropic_client.messages.create(**request(), timeout=0.3)
    deadline = asyncio.get_running_loop().time() + 10
    while simulator.control.stats()["abandoned"] == 0:
        assert asyncio.get_running_loop().time() < deadline, "the server never noticed the client left"
        await asyncio.sleep(0.05)
    stats = simulator.control.stats()
    assert (stats["abandoned"], stats["abandoned_billed"], stats["successes"]) == (1, int(billed), 0)
    assert stats["max_successes_per_request"] == int(billed), "billed: counts as paid for that request"
    assert stats["input_tokens"] > 0 if billed else stats["input_tokens"] == 0
