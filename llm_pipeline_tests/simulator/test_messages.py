"""The Messages and count_tokens endpoints through the real `AsyncAnthropic`: shapes, validation, auth."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anthropic
import pytest
from anthropic.types import Message

from llm_pipeline.simulator import Simulator, fingerprint
from llm_pipeline_tests.fixtures.simulator_requests import Classification, Entities, fenced

MODEL = "claude-haiku-5-5"
DOC = fenced("Acme Corp opened a lab in Oslo. Jane Doe said the robots cut costs for customers.")


def request(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 512, "messages": [{"role": "user", "content": DOC}], **extra}


async def test_text_answer_parses_into_a_message_with_full_usage(anthropic_client):
    raw = await anthropic_client.messages.with_raw_response.create(**request())
    message = await raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert "Acme Corp" in message.content[0].text
    usage = message.usage
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert usage.cache_creation_input_tokens == 0
    assert usage.cache_read_input_tokens == 0


async def test_forced_tool_use_answers_with_schema_valid_input(anthropic_client):
    message = await anthropic_client.messages.create(
        **request(
            tools=[{"name": "record_entities", "input_schema": Entities.model_json_schema()}],
            tool_choice={"type": "tool", "name": "record_entities"},
        )
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert block.name == "record_entities"
    entities = Entities.model_validate(block.input)
    assert {"Acme Corp": "organization", "Oslo": "location", "Jane Doe": "person"}.items() <= {
        e.name: e.type for e in entities.entities
    }.items()


async def test_json_output_config_answers_with_one_json_text_block(anthropic_client):
    schema = Classification.model_json_schema()
    message = await anthropic_client.messages.create(
        **request(output_config={"format": {"type": "json_schema", "schema": schema}})
    )
    (block,) = message.content
    assert Classification.model_validate_json(block.text).label == "business"


async def test_same_request_same_answer_and_counted_per_fingerprint(anthropic_client, simulator):
    params = request(tools=[{"name": "c", "input_schema": Classification.model_json_schema()}])
    params["tool_choice"] = {"type": "tool", "name": "c"}
    first = await anthropic_client.messages.create(**params)
    second = await anthropic_client.messages.create(**params, metadata={"user_id": "ignored-by-fingerprint"})
    assert first.id != second.id
    assert first.content[0].input == second.content[0].input
    stats = simulator.control.stats()
    assert stats["per_request"] == {fingerprint(params): 2}
    assert stats["duplicate_successes"] == 1


async def test_count_tokens_matches_the_usage_of_the_same_request(anthropic_client):
    params = request(
        system="You extract entities.", tools=[{"name": "e", "input_schema": Entities.model_json_schema()}]
    )
    counted = await anthropic_client.messages.count_tokens(
        model=params["model"], messages=params["messages"], system=params["system"], tools=params["tools"]
    )
    message = await anthropic_client.messages.create(**params)
    assert counted.input_tokens == message.usage.input_tokens


async def test_unknown_model_is_404_naming_the_model(anthropic_client):
    with pytest.raises(anthropic.NotFoundError) as info:
        await anthropic_client.messages.create(**request(model="claude-nonexistent-9"))
    assert info.value.body["error"]["type"] == "not_found_error"
    assert "claude-nonexistent-9" in info.value.body["error"]["message"]
    assert info.value.request_id.startswith("req_")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, "max_tokens: Field required"),
        (request(max_tokens=0), "max_tokens"),
        (request(max_tokens=10**7), "maximum allowed number of output tokens"),
        (request(messages=[]), "at least one message"),
        (request(messages=[{"role": "assistant", "content": "hi"}]), "first message"),
        (request(messages=[{"role": "user", "content": [{"type": "text", "text": " "}]}]), "non-whitespace"),
        (request(messages=[{"role": "robot", "content": "hi"}]), "role"),
        (request(tools=[{"name": "t", "input_schema": {"type": "array"}}]), "input_schema.type"),
        (request(tools=[{"name": "bad name!", "input_schema": {"type": "object"}}]), "tools.0.name"),
        (request(tool_choice={"type": "tool", "name": "missing"}), "tool_choice"),
        (request(output_config={"format": {"type": "xml"}}), "output_config.format.type"),
        (request(temperature=3), "temperature"),
        (request(surprise=True), "surprise: Extra inputs are not permitted"),
    ],
)
async def test_invalid_requests_are_400_invalid_request_error(anthropic_client, body, fragment):
    with pytest.raises(anthropic.BadRequestError) as info:
        await anthropic_client.post("/v1/messages", cast_to=Message, body=body)
    error = info.value.body["error"]
    assert error["type"] == "invalid_request_error"
    assert fragment in error["message"]
    assert info.value.body["request_id"] == info.value.request_id


async def test_prompt_over_the_context_window_is_rejected(anthropic_client, simulator):
    simulator.control.configure(context_window=50)
    with pytest.raises(anthropic.BadRequestError) as info:
        await anthropic_client.messages.create(
            **request(messages=[{"role": "user", "content": "word " * 100}])
        )
    # 500 chars -> 125 tokens, + 4 for the message, + 3 for the request (tokens.py)
    assert "prompt is too long: 132 tokens > 50 maximum" in info.value.body["error"]["message"]


async def test_body_over_32_mb_is_413_request_too_large(anthropic_client):
    huge = "x" * (32 * 1024 * 1024 + 10)
    with pytest.raises(anthropic.APIStatusError) as info:
        await anthropic_client.messages.create(**request(messages=[{"role": "user", "content": huge}]))
    assert info.value.status_code == 413
    assert info.value.body["error"]["type"] == "request_too_large"


async def test_wrong_or_missing_key_is_401_when_a_key_is_configured(anthropic_client, simulator):
    simulator.control.configure(api_key="sk-right")
    with pytest.raises(anthropic.AuthenticationError) as info:
        await anthropic_client.messages.create(**request())
    assert info.value.body["error"]["type"] == "authentication_error"
    right = anthropic_client.with_options(api_key="sk-right")
    assert (await right.messages.create(**request())).stop_reason == "end_turn"
    assert _raw_post(simulator, request(), {"x-api-key": "sk-right"})[0] == 200
    assert _raw_post(simulator, request(), {})[0] == 401


def _raw_post(sim: Simulator, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        sim.base_url + "/v1/messages",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def test_unknown_route_is_404_in_the_error_envelope(simulator):
    req = urllib.request.Request(simulator.base_url + "/v1/nothing-here")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(req, timeout=10)
    assert info.value.code == 404
    assert info.value.headers["request-id"].startswith("req_")
    body = json.loads(info.value.read())
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"


async def test_streaming_replays_the_same_message_as_events(anthropic_client):
    params = request(tools=[{"name": "e", "input_schema": Entities.model_json_schema()}])
    params["tool_choice"] = {"type": "tool", "name": "e"}
    plain = await anthropic_client.messages.create(**params)
    events = []
    async with anthropic_client.messages.stream(**params) as stream:
        async for event in stream:
            events.append(event.type)
        streamed = await stream.get_final_message()
    assert streamed.content[0].input == plain.content[0].input
    assert streamed.stop_reason == "tool_use"
    assert streamed.usage.output_tokens == plain.usage.output_tokens
    assert events[0] == "message_start"
    assert "input_json" in events
    assert events[-1] == "message_stop"


async def test_stream_of_text_deltas_adds_up(anthropic_client):
    text = []
    async with anthropic_client.messages.stream(**request()) as stream:
        async for piece in stream.text_stream:
            text.append(piece)
        final = await stream.get_final_message()
    assert len(text) > 1
    assert "".join(text) == final.content[0].text


async def test_cache_control_writes_then_reads_the_prefix(anthropic_client):
    system = [{"type": "text", "text": "Rules. " * 800, "cache_control": {"type": "ephemeral"}}]
    first = await anthropic_client.messages.create(**request(system=system))
    second = await anthropic_client.messages.create(**request(system=system, max_tokens=100))
    prefix = first.usage.cache_creation_input_tokens
    assert prefix == 1400  # ceil(5600 chars / 4); above the 1,024-token minimum
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == prefix
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens
    short = [{"type": "text", "text": "Short rules.", "cache_control": {"type": "ephemeral"}}]
    below_minimum = await anthropic_client.messages.create(**request(system=short))
    assert below_minimum.usage.cache_creation_input_tokens == 0
