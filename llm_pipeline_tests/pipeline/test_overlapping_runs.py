"""Two runs of the same day at once pay for every request once (issue 14).

Two real `dagster asset materialize` processes of one partition start together against one
simulator, sharing one state (a SQLite directory, or Redis), each writing its own data directory so
their tables can be compared. Without claims on requests in flight both miss the ledger and both
pay; with them one run calls and the other takes the answer from the ledger. (Queued runs of one
partition are also held to one at a time by the instance settings; these two bypass the queue, as
any `dagster asset materialize` does.)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from llm_pipeline.simulator import Latency, Simulator, SimulatorConfig
from llm_pipeline_tests.fixtures.pipeline import TABLES
from llm_pipeline_tests.fixtures.processes import content, day_dir, materialize_logged, run_env

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_runs_of_one_day_at_once_pay_once_and_write_identical_tables(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    state = request.getfixturevalue("redis_url") if backend == "redis" else str(tmp_path / "state")
    config = SimulatorConfig(latency=Latency(median_s=0.1, sigma=0.3), exit_after_s=600)
    with Simulator.spawn(config) as sim:
        runs = []
        for name in ("a", "b"):
            env = run_env(tmp_path / f"home_{name}", day_dir(tmp_path / f"data_{name}"), sim.base_url, state)
            runs.append(materialize_logged(env, tmp_path / f"{name}.log"))
        for name, run in zip("ab", runs, strict=True):
            assert run.wait(timeout=600) == 0, (tmp_path / f"{name}.log").read_text()[-3000:]
        stats = sim.control.stats()
    assert stats["max_successes_per_request"] == 1, "a request was paid by both runs"
    assert stats["successes"] == stats["distinct_requests"]
    for table in TABLES:
        a, b = content(tmp_path / "data_a", table), content(tmp_path / "data_b", table)
        pd.testing.assert_frame_equal(a, b, obj=table)
    cached = [
        pd.read_parquet(tmp_path / f"data_{name}" / "warehouse" / "extracted_entities").cached.sum()
        for name in "ab"
    ]
    assert sum(cached) > 0, "the runs overlapped: one took answers the other paid for"
