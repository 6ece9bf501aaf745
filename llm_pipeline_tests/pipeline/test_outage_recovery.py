"""After an outage, the next run recovers (issue 14).

A real `dagster asset materialize` process meets an API answering 500 to everything: the breaker
opens and the run fails fast naming it. The API recovers; once the breaker's open interval has
passed (15 s by default), the next run probes once, the breaker closes for every caller, and the
run succeeds paying for each request once. Before the fix the second run failed at once: "a probe
is in flight (next probe in 150.0s)", a probe the first run had claimed and never given back.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llm_pipeline.claude import ClaudeSettings
from llm_pipeline.simulator import Faults, Latency, Simulator, SimulatorConfig
from llm_pipeline_tests.fixtures.processes import day_dir, failures, materialize_logged, run_env

pytestmark = pytest.mark.slow


def test_outage_then_failed_run_then_recovery_then_the_next_run_succeeds_paying_once(tmp_path: Path) -> None:
    data = day_dir(tmp_path / "data")
    home = tmp_path / "home"
    config = SimulatorConfig(latency=Latency(median_s=0.05), faults=Faults(outage=500), exit_after_s=600)
    with Simulator.spawn(config) as sim:
        env = run_env(home, data, sim.base_url, str(tmp_path / "state"))
        failed = materialize_logged(env, tmp_path / "outage.log")
        assert failed.wait(timeout=300) != 0
        ended = time.monotonic()
        assert any("circuit breaker 'claude-haiku-5-5' is open" in f for f in failures(home)), failures(home)
        assert sim.control.stats()["successes"] == 0

        sim.control.clear_faults()  # the API recovers
        time.sleep(max(0.0, ClaudeSettings().breaker_open_s - (time.monotonic() - ended)) + 0.5)
        before = sim.control.stats()["attempts"]
        rerun = materialize_logged(env, tmp_path / "recovered.log")
        assert rerun.wait(timeout=600) == 0, (tmp_path / "recovered.log").read_text()[-3000:]
        stats = sim.control.stats()
    assert stats["max_successes_per_request"] == 1
    assert stats["attempts"] - before == stats["successes"], "one probe, then every request once"
    assert "transition='closed'" in (tmp_path / "recovered.log").read_text(), "the probe closed the breaker"
