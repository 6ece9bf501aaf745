"""The simulator's prompt cache as the API's: per-model minimums, reads outside the ITPM bucket,
an entry readable only once the response that wrote it has started, the schema in the prefix."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic

from llm_pipeline.simulator import Latency, Limits
from llm_pipeline_tests.fixtures.simulator_requests import fenced

MODEL = "claude-haiku-5-5"
#: 1,400 tokens at the simulator's 4 characters per token.
RULES = "Rules. " * 800
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}


def request(n: int = 0, *, model: str = MODEL, ttl: str | None = None, **extra: Any) -> dict[str, Any]:
    marker = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return {
        "model": model,
        "max_tokens": 64,
        "system": [{"type": "text", "text": RULES, "cache_control": marker}],
        "messages": [{"role": "user", "content": fenced(f"Document number {n} about Acme Corp in Oslo.")}],
        **extra,
    }


async def test_minimum_is_per_model(anthropic_client, simulator):
    simulator.control.configure(model_prompt_cache_min_tokens={"claude-sonnet-5-5": 2_000})
    cached = await anthropic_client.messages.create(**request())
    below = await anthropic_client.messages.create(**request(model="claude-sonnet-5-5"))
    assert cached.usage.cache_creation_input_tokens == 1_400
    assert below.usage.cache_creation_input_tokens == 0
    assert below.usage.cache_read_input_tokens == 0
    again = await anthropic_client.messages.create(**request(1, model="claude-sonnet-5-5"))
    assert again.usage.cache_read_input_tokens == 0  # nothing was written, so nothing is read


async def test_output_schema_is_part_of_the_cached_prefix(anthropic_client, simulator):
    fmt = {"format": {"type": "json_schema", "schema": SCHEMA}}
    first = await anthropic_client.messages.create(**request(output_config=fmt))
    assert first.usage.cache_creation_input_tokens > 1_400  # rules plus the schema
    same = await anthropic_client.messages.create(**request(1, output_config=fmt))
    assert same.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    other = {"format": {"type": "json_schema", "schema": {**SCHEMA, "required": []}}}
    changed = await anthropic_client.messages.create(**request(2, output_config=other))
    assert changed.usage.cache_read_input_tokens == 0  # another schema is another prefix
    assert changed.usage.cache_creation_input_tokens > 0


def remaining_input(raw: Any) -> int:
    return int(raw.headers["anthropic-ratelimit-input-tokens-remaining"])


async def test_cache_reads_do_not_draw_on_the_input_bucket(anthropic_client, simulator):
    simulator.control.configure(limits=Limits(itpm=6_000, burst_seconds=60))  # a 6,000-token bucket
    writer = await anthropic_client.messages.with_raw_response.create(**request())
    written = (await writer.parse()).usage
    after_write = remaining_input(writer)
    assert 6_000 - after_write >= written.cache_creation_input_tokens + written.input_tokens
    readers = [await anthropic_client.messages.with_raw_response.create(**request(n)) for n in range(1, 9)]
    for raw in readers:
        usage = (await raw.parse()).usage
        assert usage.cache_read_input_tokens == 1_400
    # eight readers of 1,400 cached tokens each would have emptied the bucket twice over
    assert after_write - remaining_input(readers[-1]) < 8 * 100
    assert simulator.control.stats()["limiter_429"] == 0


async def test_older_models_count_cache_reads(anthropic_client, simulator):
    simulator.control.configure(limits=Limits(itpm=6_000, burst_seconds=60), itpm_counts_cache_reads=[MODEL])
    await anthropic_client.messages.create(**request())
    outcomes = []
    for n in range(1, 9):
        try:
            outcomes.append(await anthropic_client.messages.create(**request(n)))
        except anthropic.RateLimitError as err:
            outcomes.append(err)
    assert any(isinstance(o, anthropic.RateLimitError) for o in outcomes)
    assert (
        "input tokens per minute"
        in next(o for o in outcomes if isinstance(o, anthropic.RateLimitError)).body["error"]["message"]
    )


async def test_entry_is_readable_only_after_the_writing_response_has_started(anthropic_client, simulator):
    simulator.control.configure(latency=Latency(median_s=0.5))
    # two first calls in parallel: neither response has started when the other arrives
    both = await asyncio.gather(*(anthropic_client.messages.create(**request(n)) for n in range(2)))
    assert [m.usage.cache_creation_input_tokens for m in both] == [1_400, 1_400]
    assert [m.usage.cache_read_input_tokens for m in both] == [0, 0]
    # a call sent while a writer's response is still pending writes too; one sent after it, reads
    simulator.control.configure(latency=Latency(median_s=0.6))
    writer = asyncio.ensure_future(anthropic_client.messages.create(**request(2, ttl="1h")))
    await asyncio.sleep(0.2)
    early = await anthropic_client.messages.create(**request(3, ttl="1h"))
    first = await writer
    late = await anthropic_client.messages.create(**request(4, ttl="1h"))
    assert first.usage.cache_creation_input_tokens == early.usage.cache_creation_input_tokens == 1_400
    assert late.usage.cache_read_input_tokens == 1_400
    stats = simulator.control.stats()
    assert (stats["cache_writes"], stats["cache_reads"]) == (4, 1)
    assert stats["cache_creation_input_tokens"] == 4 * 1_400
    assert stats["cache_creation_1h_input_tokens"] == 2 * 1_400
    assert stats["cache_read_input_tokens"] == 1_400


async def test_streamed_writer_publishes_its_entry_when_its_response_starts(anthropic_client, simulator):
    simulator.control.configure(latency=Latency(median_s=0.1, per_output_token_s=0.05))
    async with anthropic_client.messages.stream(**request()) as stream:
        reader = await anthropic_client.messages.create(**request(1))  # the writer has started streaming
        final = await stream.get_final_message()
    assert final.usage.cache_creation_input_tokens == 1_400
    assert reader.usage.cache_read_input_tokens == 1_400


async def test_batch_items_use_the_cache_with_their_ttl(anthropic_client, simulator):
    items = [{"custom_id": f"doc-{n}", "params": request(n, ttl="1h")} for n in range(4)]
    batch = await anthropic_client.messages.batches.create(requests=items)
    deadline = time.monotonic() + 20
    while batch.processing_status != "ended" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        batch = await anthropic_client.messages.batches.retrieve(batch.id)
    usages = [
        line.result.message.usage async for line in await anthropic_client.messages.batches.results(batch.id)
    ]
    assert sorted(u.cache_creation.ephemeral_1h_input_tokens for u in usages) == [0, 0, 0, 1_400]
    assert sorted(u.cache_read_input_tokens for u in usages) == [0, 1_400, 1_400, 1_400]
    assert {u.service_tier for u in usages} == {"batch"}
    stats = simulator.control.stats()["batch"]["tokens"]
    assert (stats["batch_cache_writes"], stats["batch_cache_reads"]) == (1, 3)


async def test_an_evicted_entry_is_written_again(anthropic_client, simulator):
    await anthropic_client.messages.create(**request())
    assert simulator.control.evict_prompt_cache() == {"evicted": 1}
    again = await anthropic_client.messages.create(**request(1))
    assert (again.usage.cache_read_input_tokens, again.usage.cache_creation_input_tokens) == (0, 1_400)
