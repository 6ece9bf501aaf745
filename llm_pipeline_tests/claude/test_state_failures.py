"""A failing state store never loses a paid answer (issue 14): real redis-server processes frozen
with SIGSTOP and restarted empty, a SQLite file locked by another connection past the timeout, and
a read-only state directory (in a process without the privilege to ignore it).

Each run is a stack whose systemic errors stop it, as the pipeline's steps do; the simulator's
per-request count shows whether anything was paid twice.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from llm_pipeline.claude import (
    CallResult,
    ClaudeSettings,
    Drain,
    Request,
    Runner,
    StateStoreError,
    open_client,
)
from llm_pipeline.claude.spool import Spool
from llm_pipeline.simulator import Latency, Simulator
from llm_pipeline_tests.fixtures.claude_calls import request, settings, until, wire_full
from llm_pipeline_tests.fixtures.servers import RedisServer, free_port
from llm_pipeline_tests.fixtures.system_deps import REDIS_SERVER, find

PASSWORD = "s3cret-redis-pw"
DOCS = 24


@pytest.fixture
def redis(tmp_path: Path) -> RedisServer:
    binary = find(REDIS_SERVER)
    if binary is None:
        pytest.fail("redis-server is missing: run `make test`, or set REDIS_SERVER=/path/to/redis-server")
    server = RedisServer(binary, tmp_path, password=PASSWORD).start()
    yield server
    server.stop()


def config_for(sim: Simulator, state: str, tmp_path: Path, **overrides: object) -> ClaudeSettings:
    return settings(
        sim.base_url,
        state=state,
        spool_dir=str(tmp_path / "spool"),
        state_timeout_s=1.0,
        max_concurrency=8,
        **overrides,
    )


async def run_stopping_on_systemic(
    config: ClaudeSettings, requests: list[Request], started=None
) -> list[CallResult]:
    """A run as a step makes it: a systemic error drains the calls in flight, then is raised."""
    drain = Drain(config.drain_s)
    async with open_client(config, drain=drain) as client:

        async def call(req: Request) -> CallResult:
            result = await client.call(req)
            if result.error is not None and result.error.systemic:
                raise result.error
            return result

        task = asyncio.create_task(Runner(8).run(call, requests, ordered=False, drain=drain))
        if started is not None:
            await started()
        return await task


async def test_redis_unreachable_at_start_fails_before_any_call_naming_the_host_not_the_password(
    simulator: Simulator, tmp_path: Path
) -> None:
    port = free_port()
    config = config_for(simulator, f"redis://:{PASSWORD}@127.0.0.1:{port}/0", tmp_path)
    with pytest.raises(StateStoreError) as caught:
        async with open_client(config):
            pass
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "unreachable" in message
    assert PASSWORD not in message
    assert PASSWORD not in repr(caught.value.__cause__ or "")
    assert simulator.control.stats()["attempts"] == 0


async def test_a_frozen_redis_keeps_paid_answers_in_the_spool_and_the_next_run_pays_nothing_twice(
    simulator: Simulator, redis: RedisServer, tmp_path: Path
) -> None:
    """Regression (issue 14): the ledger write after a paid answer raised, the answer was dropped,
    and the next run paid for it again."""
    simulator.control.configure(latency=Latency(median_s=0.5), bill_abandoned=True)
    config = config_for(simulator, redis.url, tmp_path)
    requests = [request(i) for i in range(DOCS)]

    async def freeze_with_calls_on_the_wire() -> None:
        await until(lambda: wire_full(simulator))
        redis.pause()

    try:
        with pytest.raises(StateStoreError) as caught:
            await run_stopping_on_systemic(config, requests, freeze_with_calls_on_the_wire)
    finally:
        redis.resume()
    message = str(caught.value)
    assert f"127.0.0.1:{redis.port}" in message
    assert PASSWORD not in message
    assert "did not answer in time" in message
    spool = Spool(config.spool_dir, f"redis://:***@127.0.0.1:{redis.port}/0", "redis")
    assert spool.pending(), "the answers on the wire when Redis froze were spooled"
    assert str(spool.directory) in message, "the error says where they are"
    assert simulator.control.stats()["abandoned"] == 0
    paid_before = simulator.control.stats()["successes"]

    results = await run_stopping_on_systemic(config, requests)
    assert all(r.ok for r in results)
    assert not spool.pending(), "replayed into the ledger, then deleted"
    stats = simulator.control.stats()
    assert stats["max_successes_per_request"] == 1, "nothing paid twice"
    assert sum(r.record.cached for r in results) == paid_before


async def test_a_redis_that_restarted_empty_is_reported_not_silently_paid_again(
    simulator: Simulator, redis: RedisServer, tmp_path: Path
) -> None:
    config = config_for(simulator, redis.url, tmp_path)
    requests = [request(i) for i in range(DOCS)]
    assert all(r.ok for r in await run_stopping_on_systemic(config, requests))
    redis.restart()
    with pytest.raises(StateStoreError) as at_start:
        await run_stopping_on_systemic(config, requests)
    assert at_start.value.lost
    assert "lost its data" in str(at_start.value)
    assert PASSWORD not in str(at_start.value)
    assert simulator.control.stats()["successes"] == DOCS, "refused before paying for anything again"

    simulator.control.configure(latency=Latency(median_s=0.3))
    spool = Spool(config.spool_dir, f"redis://:***@127.0.0.1:{redis.port}/0", "redis")
    assert spool.forget_marker(), "a person accepts the loss"
    more = [request(i, prefix="more") for i in range(DOCS)]

    async def restart_mid_run() -> None:
        await until(lambda: simulator.control.stats()["successes"] >= DOCS + 4)
        redis.restart()

    with pytest.raises(StateStoreError) as mid_run:
        await run_stopping_on_systemic(config, more, restart_mid_run)
    assert mid_run.value.lost
    assert "while this run used it" in str(mid_run.value)


async def test_a_ledger_locked_past_the_timeout_spools_and_the_next_run_replays(
    simulator: Simulator, tmp_path: Path
) -> None:
    simulator.control.configure(latency=Latency(median_s=0.5), bill_abandoned=True)
    state = tmp_path / "state"
    config = config_for(simulator, str(state), tmp_path)
    requests = [request(i) for i in range(DOCS)]
    holder: sqlite3.Connection | None = None

    async def lock_with_calls_on_the_wire() -> None:
        nonlocal holder
        await until(lambda: wire_full(simulator))
        holder = sqlite3.connect(state / "ledger.sqlite", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")

    try:
        with pytest.raises(StateStoreError) as caught:
            await run_stopping_on_systemic(config, requests, lock_with_calls_on_the_wire)
    finally:
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
    assert "stayed locked by another process" in str(caught.value)
    assert caught.value.spooled is not None
    assert simulator.control.stats()["abandoned"] == 0
    paid_before = simulator.control.stats()["successes"]
    results = await run_stopping_on_systemic(config, requests)
    assert all(r.ok for r in results)
    assert simulator.control.stats()["max_successes_per_request"] == 1
    assert sum(r.record.cached for r in results) == paid_before


_OPEN_ONCE = """
import asyncio, sys
from llm_pipeline.claude import StateStoreError, open_client
from llm_pipeline_tests.fixtures.claude_calls import request, settings, until, wire_full

async def main():
    try:
        async with open_client(settings(sys.argv[1], state=sys.argv[2])) as client:
            print("ok" if (await client.call(request(1))).ok else "error")
    except StateStoreError as exc:
        print("StateStoreError:", exc)

asyncio.run(main())
"""


def _without_privilege() -> list[str]:
    """Root ignores permission bits; drop the capabilities that let it (still uid 0, no mocking)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "running as root: setpriv (util-linux) is needed to drop CAP_DAC_OVERRIDE"
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


@pytest.mark.parametrize("used_before", [False, True])
def test_a_read_only_state_directory_fails_before_any_call_naming_it(
    simulator: Simulator, tmp_path: Path, used_before: bool
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    if used_before:
        subprocess.run([sys.executable, "-c", _OPEN_ONCE, simulator.base_url, str(state)], check=True)
        simulator.control.reset()
    state.chmod(0o555)
    try:
        out = subprocess.run(
            [*_without_privilege(), sys.executable, "-c", _OPEN_ONCE, simulator.base_url, str(state)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        state.chmod(0o755)
    assert out.stdout.startswith("StateStoreError:"), out.stdout + out.stderr
    assert f"the state directory {state} is not writable" in out.stdout
    assert simulator.control.stats()["attempts"] == 0, "nothing was called"
