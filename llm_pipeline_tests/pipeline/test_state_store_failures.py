"""A failing state store fails the step with what to do, loses no paid answer, and leaks no password
(issue 14), through real `dagster asset materialize` processes and a real redis-server.

The state is `redis://:<password>@127.0.0.1:<port>/0`. Mid-partition, with answers on the wire, the
Redis process is frozen (SIGSTOP): the run must fail naming the Redis host (never the password) and
the spool file holding the answers it could not store; after SIGCONT the next run puts them into the
ledger before calling and pays for nothing twice. A Redis that is not there at all fails the run
before any call. Afterwards every byte the runs left (Dagster's storage, logs) is searched for the
password.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from llm_pipeline.simulator import Latency, Simulator, SimulatorConfig
from llm_pipeline_tests.fixtures.processes import day_dir, failures, materialize_logged, run_env, wait_until
from llm_pipeline_tests.fixtures.servers import RedisServer, free_port
from llm_pipeline_tests.fixtures.system_deps import REDIS_SERVER, find

pytestmark = pytest.mark.slow


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_a_frozen_redis_fails_the_step_naming_it_and_the_next_run_pays_nothing_twice(tmp_path: Path) -> None:
    binary = find(REDIS_SERVER)
    assert binary is not None, "redis-server is missing: run `make test`"
    password = f"pw-{secrets.token_hex(12)}"
    data, home = day_dir(tmp_path / "data"), tmp_path / "home"
    config = SimulatorConfig(latency=Latency(median_s=0.5), bill_abandoned=True, exit_after_s=600)
    with Simulator.spawn(config) as sim, RedisServer(binary, tmp_path, password=password) as redis:
        env = run_env(
            home, data, sim.base_url, redis.url,
            LLM_PIPELINE_STATE_TIMEOUT_S="2", LLM_PIPELINE_SPOOL_DIR=str(tmp_path / "spool"),
        )  # fmt: skip

        def calls_on_the_wire() -> bool:
            stats = sim.control.stats()
            return stats["successes"] >= 16 and stats["in_flight"] == 8

        run = materialize_logged(env, tmp_path / "frozen.log")
        wait_until(calls_on_the_wire, 180, "the run to be mid-partition with 8 calls on the wire")
        redis.pause()
        try:
            assert run.wait(timeout=120) != 0
        finally:
            redis.resume()
        found = failures(home)
        assert any(f"the shared state at redis://:***@127.0.0.1:{redis.port}/0 failed" in f for f in found), (
            found
        )
        assert any("go into the ledger before the next run calls anything" in f for f in found), found
        spooled = list((tmp_path / "spool").rglob("answers-*.jsonl"))
        assert spooled, "the answers on the wire were kept"
        assert sim.control.stats()["abandoned"] == 0
        paid = sim.control.stats()["successes"]

        sim.control.configure(latency=Latency(median_s=0.01))
        rerun = materialize_logged(env, tmp_path / "rerun.log")
        assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
        assert "replayed" in (tmp_path / "rerun.log").read_text()
        assert not list((tmp_path / "spool").rglob("answers-*.jsonl")), "replayed, then deleted"
        stats = sim.control.stats()
        assert stats["max_successes_per_request"] == 1, "an answer paid before the freeze was paid again"
        assert stats["successes"] > paid

        absent = run_env(home, data, sim.base_url, f"redis://:{password}@127.0.0.1:{free_port()}/0")
        unreachable = materialize_logged(absent, tmp_path / "absent.log")
        assert unreachable.wait(timeout=300) != 0
        assert sim.control.stats()["attempts"] == stats["attempts"], "no call before the store answered"
        assert any("is unreachable" in f for f in failures(home))

    for root in (home, tmp_path / "spool", data):
        assert _files_containing(root, password.encode()) == []
    for log in tmp_path.glob("*.log"):
        assert password not in log.read_text(), log.name
