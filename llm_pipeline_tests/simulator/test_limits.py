"""The simulator's rate limits over HTTP: 429s for the excess, never more than the buckets allow."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest

from llm_pipeline.simulator import Limits, max_in_window

MODEL = "claude-haiku-5-5"


def request(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": f"Hello {n}."}],
        **extra,
    }


async def fire(client: anthropic.AsyncAnthropic, n: int, **extra: Any) -> Any:
    try:
        return await client.messages.with_raw_response.create(**request(n, **extra))
    except anthropic.RateLimitError as err:
        return err


async def test_600_rpm_with_5_s_burst_holds_under_200_simultaneous_requests(anthropic_client, simulator):
    rate_per_s, burst = 10.0, 50.0  # 600 RPM; 5 s of refill
    simulator.control.configure(limits=Limits(rpm=600, burst_seconds=5))
    results = await asyncio.gather(*(fire(anthropic_client, n) for n in range(200)))
    rejected = [r for r in results if isinstance(r, anthropic.RateLimitError)]
    stats = simulator.control.stats(times=True)
    assert stats["successes"] == 200 - len(rejected)
    assert stats["successes"] >= burst  # the whole burst is served...
    assert len(rejected) >= 100  # ...and the excess refused (at most a few seconds of refill got through)
    assert (stats["limiter_429"], stats["injected_429"]) == (len(rejected), 0)
    assert len(stats["limiter_429_times"]) == len(rejected), "each refusal with when it came"
    assert all(0 <= t <= stats["uptime_s"] for t in stats["limiter_429_times"])
    for window in (0.05, 0.2, 0.5, 1.0, 2.0, 5.0):
        assert max_in_window(stats["success_times"], window) <= burst + rate_per_s * window + 1
    for err in rejected[:5]:
        assert int(err.response.headers["retry-after"]) >= 1
        assert err.response.headers["anthropic-ratelimit-requests-limit"] == "600"
        assert "requests per minute" in err.body["error"]["message"]


async def test_waiting_retry_after_is_enough(anthropic_client, simulator):
    simulator.control.configure(limits=Limits(rpm=60, burst_seconds=1))
    await anthropic_client.messages.create(**request())
    with pytest.raises(anthropic.RateLimitError) as info:
        await anthropic_client.messages.create(**request(1))
    await asyncio.sleep(float(info.value.response.headers["retry-after"]))
    await anthropic_client.messages.create(**request(2))


async def test_success_responses_carry_the_rate_limit_headers(anthropic_client, simulator):
    simulator.control.configure(limits=Limits(rpm=600, itpm=60_000, otpm=6_000))
    raw = await anthropic_client.messages.with_raw_response.create(**request())
    headers = raw.headers
    assert headers["anthropic-ratelimit-requests-limit"] == "600"
    assert headers["anthropic-ratelimit-requests-remaining"] == "599"
    assert headers["anthropic-ratelimit-input-tokens-limit"] == "60000"
    assert headers["anthropic-ratelimit-output-tokens-limit"] == "6000"
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == str(6_000 - 64)
    for kind in ("requests", "input-tokens", "output-tokens", "tokens"):
        assert headers[f"anthropic-ratelimit-{kind}-reset"].endswith("Z")


async def test_input_tokens_are_limited_by_the_estimate(anthropic_client, simulator):
    simulator.control.configure(limits=Limits(itpm=600, burst_seconds=60))  # 600 tokens in the bucket
    big = [{"role": "user", "content": "word " * 800}]  # about 1,000 tokens: can never fit
    with pytest.raises(anthropic.RateLimitError) as info:
        await anthropic_client.messages.create(**request(messages=big))
    assert "input tokens per minute" in info.value.body["error"]["message"]
    await anthropic_client.messages.create(**request())


async def test_unused_output_is_refunded(anthropic_client, simulator):
    simulator.control.configure(limits=Limits(otpm=1_200, burst_seconds=60))  # 1,200 output tokens
    for n in range(5):  # each books 1,000 but uses a handful; without the refund the 2nd would fail
        await anthropic_client.messages.create(**request(n, max_tokens=1_000))


async def test_limits_are_per_model_and_overridable(anthropic_client, simulator):
    simulator.control.configure(
        limits=Limits(rpm=60, burst_seconds=1), model_limits={"claude-sonnet-5-5": Limits(rpm=6_000)}
    )
    await anthropic_client.messages.create(**request())
    with pytest.raises(anthropic.RateLimitError):
        await anthropic_client.messages.create(**request())
    await anthropic_client.messages.create(**request(model="claude-opus-5-5"))
    for n in range(5):
        await anthropic_client.messages.create(**request(n, model="claude-sonnet-5-5"))


async def test_reset_restores_the_start_limits(anthropic_client, simulator):
    simulator.control.configure(limits=Limits(rpm=60, burst_seconds=1))
    simulator.control.reset()
    for n in range(20):
        await anthropic_client.messages.create(**request(n))


async def test_a_gateway_that_strips_the_rate_limit_headers(anthropic_client, simulator):
    """`rate_limit_headers=False`: the limits still hold, but neither successes nor 429s say so."""
    simulator.control.configure(limits=Limits(rpm=60, burst_seconds=1), rate_limit_headers=False)
    ok = await anthropic_client.messages.with_raw_response.create(**request())
    refused = await fire(anthropic_client, 1)
    assert isinstance(refused, anthropic.RateLimitError)
    for headers in (ok.headers, refused.response.headers):
        assert not [name for name in headers if name.startswith("anthropic-ratelimit-")]
    assert int(refused.response.headers["retry-after"]) >= 1, "retry-after is not a rate-limit header"


async def test_token_remaining_rounded_to_thousands_as_the_api_sends_it(anthropic_client, simulator):
    simulator.control.configure(
        limits=Limits(rpm=600, itpm=600_000, otpm=60_000, burst_seconds=1), round_token_remaining=True
    )
    raw = await anthropic_client.messages.with_raw_response.create(**request())
    headers = raw.headers
    assert headers["anthropic-ratelimit-input-tokens-remaining"] == "10000"  # 10,000 minus a few
    assert headers["anthropic-ratelimit-output-tokens-remaining"] == "1000"  # 1,000 minus 64 booked
    assert headers["anthropic-ratelimit-tokens-remaining"] == "11000"
    assert headers["anthropic-ratelimit-requests-remaining"] == "9", "requests are exact"
    assert headers["anthropic-ratelimit-input-tokens-limit"] == "600000"
