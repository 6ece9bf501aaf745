"""The simulator fixtures every part of the suite uses.

- `simulator_server` (session): one in-process simulator with defaults (no limits, zero latency,
  no faults, no api key) on 127.0.0.1 and a free port, stopped at the end of the session.
- `simulator`: that server after `control.reset()`; tests set faults and limits on it freely.
- `anthropic_client`: the real `AsyncAnthropic` pointed at it, `max_retries=0`, closed after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from llm_pipeline.simulator import Simulator, SimulatorConfig


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig()) as sim:
        yield sim


@pytest.fixture
def simulator(simulator_server: Simulator) -> Simulator:
    simulator_server.control.reset()
    return simulator_server


@pytest.fixture
async def anthropic_client(simulator: Simulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=simulator.base_url, api_key="sk-sim-test", max_retries=0)
    try:
        yield client
    finally:
        await client.close()
