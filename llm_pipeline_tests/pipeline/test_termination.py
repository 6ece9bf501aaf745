"""SIGTERM to a run process mid-partition drains instead of abandoning (issue 14).

A real `dagster asset materialize` process against a simulator in its own process whose answers take
a second, with billing of abandoned requests switched on: a run that cancelled its calls in flight
would leave `abandoned` requests the API billed and the re-run then paid for again. The drained run
stops starting calls, waits for the eight on the wire, stores their answers, and fails its step as
interrupted, leaving no staging file behind.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pandas as pd
import pytest

from llm_pipeline.simulator import Latency, Simulator, SimulatorConfig
from llm_pipeline_tests.fixtures.pipeline import PARTITION
from llm_pipeline_tests.fixtures.processes import day_dir, failures, materialize_logged, run_env, wait_until

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_partition_drains_the_calls_in_flight_and_the_rerun_pays_nothing_twice(
    tmp_path: Path, signum: signal.Signals
) -> None:
    data = day_dir(tmp_path / "data")
    home = tmp_path / "home"
    config = SimulatorConfig(latency=Latency(median_s=1.0), bill_abandoned=True, exit_after_s=600)
    with Simulator.spawn(config) as sim:
        env = run_env(home, data, sim.base_url, str(tmp_path / "state"))

        def calls_on_the_wire() -> bool:
            stats = sim.control.stats()
            return stats["successes"] >= 16 and stats["in_flight"] == 8

        run = materialize_logged(env, tmp_path / "run.log")
        wait_until(calls_on_the_wire, 180, "the run to be mid-partition with 8 calls on the wire")
        run.send_signal(signum)
        code = run.wait(timeout=60)
        log = (tmp_path / "run.log").read_text()
        assert code != 0, log[-3000:]
        wait_until(lambda: sim.control.stats()["in_flight"] == 0, 30, "no request left in flight")
        stopped = sim.control.stats()
        assert stopped["abandoned"] == 0, "a request the API had accepted was abandoned (and billed)"
        step_failures = failures(home)
        assert any("extracted_entities" in f and "interrupted (" in f for f in step_failures), step_failures
        assert f"{signum.name} received: no new calls start" in log
        leftovers = [p for p in (data / "warehouse").rglob("*") if p.name.endswith(".tmp")]
        assert leftovers == [], "staging files are removed"
        assert not (data / "warehouse" / "extracted_entities" / f"{PARTITION}.parquet").exists()

        sim.control.configure(latency=Latency(median_s=0.01))  # the re-run need not be slow
        rerun = materialize_logged(env, tmp_path / "rerun.log")
        assert rerun.wait(timeout=600) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
        after = sim.control.stats()
        assert after["max_successes_per_request"] == 1, "the re-run paid again for a drained answer"
        entities = pd.read_parquet(data / "warehouse" / "extracted_entities" / f"{PARTITION}.parquet")
        assert entities.cached.sum() == stopped["successes"], "every answer paid before the stop came free"
