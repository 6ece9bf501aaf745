"""Ground-truth counters and the control API that reads and resets them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest

from llm_pipeline.simulator import ControlError, Latency, Limits, fingerprint, max_in_window

MODEL = "claude-haiku-5-5"


def request(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": f"Note {n}."}],
        **extra,
    }


@pytest.mark.parametrize(
    ("times", "window", "expected"),
    [
        ([], 1.0, 0),
        ([0.0, 0.1, 0.2], 1.0, 3),
        ([0.0, 1.0, 2.0], 1.0, 1),  # half-open windows
        ([0.0, 0.5, 0.9, 1.4, 1.45, 3.0], 1.0, 4),
        ([3.0, 0.0, 0.5, 0.9], 1.0, 3),  # unsorted input
    ],
)
def test_max_in_window(times, window, expected):
    assert max_in_window(times, window) == expected


def test_fingerprint_ignores_transport_keys_only():
    base = request()
    assert fingerprint(base) == fingerprint({**base, "stream": True, "metadata": {"user_id": "u"}})
    assert fingerprint(base) == fingerprint(dict(reversed(list(base.items()))))
    assert fingerprint(base) != fingerprint({**base, "max_tokens": 65})
    assert len(fingerprint(base)) == 64


async def test_per_request_success_counter(anthropic_client, simulator):
    for n in (1, 2, 3, 1, 1):
        await anthropic_client.messages.create(**request(n))
    stats = simulator.control.stats()
    assert stats["attempts"] == stats["successes"] == 5
    assert stats["per_request"][fingerprint(request(1))] == 3
    assert stats["distinct_requests"] == 3
    assert stats["duplicate_successes"] == 2
    assert stats["max_successes_per_request"] == 3
    assert sum(stats["successes_per_second"]) == 5
    assert "success_times" not in stats
    assert "limiter_429_times" not in stats
    timed = simulator.control.stats(times=True)
    assert (len(timed["success_times"]), timed["limiter_429_times"]) == (5, [])


async def test_failed_attempts_are_not_successes(anthropic_client, simulator):
    simulator.control.set_faults(p500=1.0)
    with pytest.raises(anthropic.InternalServerError):
        await anthropic_client.messages.create(**request())
    stats = simulator.control.stats()
    assert (stats["attempts"], stats["successes"], stats["distinct_requests"]) == (1, 0, 0)
    assert stats["status_counts"] == {"500": 1}
    assert stats["injected"] == {"500": 1}


async def test_tokens_billed_add_up(anthropic_client, simulator):
    messages = [await anthropic_client.messages.create(**request(n)) for n in range(3)]
    stats = simulator.control.stats()
    assert stats["input_tokens"] == sum(m.usage.input_tokens for m in messages)
    assert stats["output_tokens"] == sum(m.usage.output_tokens for m in messages)


async def test_in_flight_is_tracked(anthropic_client, simulator):
    simulator.control.configure(latency=Latency(median_s=0.5))
    await asyncio.gather(*(anthropic_client.messages.create(**request(n)) for n in range(8)))
    stats = simulator.control.stats()
    assert stats["max_in_flight"] == 8
    assert stats["in_flight"] == 0


async def test_reset_returns_to_the_start_configuration(anthropic_client, simulator):
    start = simulator.control.config()
    simulator.control.configure(limits=Limits(rpm=1), latency=Latency(median_s=1), api_key="sk-x")
    simulator.control.set_faults(p429=0.5)
    assert simulator.control.config()["limits"]["rpm"] == 1
    simulator.control.reset()
    assert simulator.control.config() == start
    await anthropic_client.messages.create(**request())
    assert simulator.control.stats()["attempts"] == 1


def test_control_rejects_bad_settings(simulator):
    with pytest.raises(ControlError, match="not configurable"):
        simulator.control.configure(port=1234)
    with pytest.raises(ControlError, match="400"):
        simulator.control.configure(limits=Limits(), batch_p_errored=7)
    with pytest.raises(ValueError, match="positive"):
        Limits(rpm=0)


async def test_a_reset_during_a_request_leaves_the_new_counters_balanced(anthropic_client, simulator):
    """Regression: a request that began before `reset` used to decrement the new in-flight count."""
    simulator.control.configure(latency=Latency(median_s=0.5))
    call = asyncio.create_task(anthropic_client.messages.create(**request()))
    for _ in range(200):
        if simulator.control.stats()["in_flight"]:
            break
        await asyncio.sleep(0.01)
    simulator.control.reset()
    await call
    stats = simulator.control.stats()
    assert (stats["in_flight"], stats["attempts"], stats["successes"]) == (0, 0, 0)


def test_config_never_returns_the_api_key(simulator):
    """The control routes take no auth: the key a server was started with must not be readable."""
    echoed = simulator.control.configure(api_key="sk-ant-secret-123")
    shown = simulator.control.config()
    assert shown["api_key"] == echoed["api_key"] == "<redacted>"
    assert "sk-ant-secret-123" not in json.dumps(shown) + json.dumps(echoed)
    simulator.control.configure(api_key=None)
    assert simulator.control.config()["api_key"] is None
