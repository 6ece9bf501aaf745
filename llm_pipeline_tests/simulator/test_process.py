"""The simulator outside the test process: the CLI, `Simulator.spawn`, self-termination."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anthropic
import psutil
import pytest

from llm_pipeline.simulator import Faults, Limits, Simulator, SimulatorConfig
from llm_pipeline.simulator.process import LISTENING_PREFIX

CLI = str(Path(sys.executable).with_name("llm-pipeline-simulator"))
MODEL = "claude-haiku-5-5"
HELLO = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "Hello."}]}


def gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_help_documents_every_switch():
    out = subprocess.run([CLI, "--help"], capture_output=True, text=True, check=True, timeout=60).stdout
    switches = str.split(
        """--host --port --api-key --seed --exit-after --models --extra-models --context-window
    --max-output-tokens --prompt-cache-min-tokens --prompt-cache-min-tokens-for --itpm-counts-cache-reads
    --rpm --itpm --otpm --burst-seconds --latency-median
    --latency-sigma --latency-per-output-token --p429 --retry-after --p500 --p529 --p-drop --p-hang
    --hang-seconds --p-malformed --p-bad-json --p-refusal --outage --no-gullible --batch-processing-seconds
    --batch-expiry-seconds --batch-p-errored"""
    )
    missing = [s for s in switches if s not in out]
    assert missing == []
    for endpoint in ("/_sim/stats", "/_sim/faults", "/_sim/config", "/_sim/reset", "ANTHROPIC_BASE_URL"):
        assert endpoint in out


def test_cli_serves_until_terminated():
    proc = subprocess.Popen(
        [CLI, "--port", "0", "--api-key", "sk-cli", "--rpm", "600", "--exit-after", "120"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith(LISTENING_PREFIX)
        base_url = line.removeprefix(LISTENING_PREFIX).strip()
        assert base_url.startswith("http://127.0.0.1:")
        client = anthropic.Anthropic(base_url=base_url, api_key="sk-cli", max_retries=0)
        raw = client.messages.with_raw_response.create(**HELLO)
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "600"
        with pytest.raises(anthropic.AuthenticationError):
            client.with_options(api_key="sk-wrong").messages.create(**HELLO)
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_exit_after_stops_a_stray_server():
    proc = subprocess.run([CLI, "--exit-after", "0.5"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.startswith(LISTENING_PREFIX)


def test_in_process_exit_after():
    sim = Simulator(SimulatorConfig(exit_after_s=0.3)).start()
    control = sim.control
    deadline = time.monotonic() + 30
    while control.health() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not control.health()
    sim.stop()


def test_spawn_runs_in_another_process():
    config = SimulatorConfig(limits=Limits(rpm=6_000), faults=Faults(p500=1.0))
    with Simulator.spawn(config) as proc:
        assert proc.pid != os.getpid()
        assert proc.control.config()["limits"]["rpm"] == 6_000
        client = anthropic.Anthropic(base_url=proc.base_url, api_key="k", max_retries=0)
        with pytest.raises(anthropic.InternalServerError):
            client.messages.create(**HELLO)
        proc.control.clear_faults()
        client.messages.create(**HELLO)
        client.close()
        assert proc.control.stats()["status_counts"] == {"200": 1, "500": 1}
    assert proc.process.returncode == 0


def test_spawned_simulator_dies_with_its_parent(tmp_path):
    script = textwrap.dedent(
        """
        import time
        from llm_pipeline.simulator import Simulator
        proc = Simulator.spawn()
        print(proc.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert psutil.pid_exists(child)
        parent.kill()
        parent.wait()
        assert gone(child, timeout_s=30)
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_throughput_benchmark_runs_small():
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "simulator_throughput.py"
    out = subprocess.run(
        [sys.executable, str(script), "--requests", "300", "--warmup", "30", "--concurrency", "8"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["statuses"] == {"200": 300}
    assert summary["server_successes"] == 300
    assert summary["requests_per_s"] > 0
