"""An Anthropic-compatible API server for the demo, the tests and the benchmarks.

Faithful enough that the real `anthropic` SDK cannot tell the difference (wire format, status
codes, headers, usage), and switchable enough to reproduce every failure the pipeline must
survive (rate limits, 5xx, overload, dropped and hung connections, broken model output). No
Dagster imports. See docs/simulator.md.
"""

from llm_pipeline.simulator.config import (
    KNOWN_MODELS,
    Faults,
    Latency,
    Limits,
    ScheduledFault,
    SimulatorConfig,
)
from llm_pipeline.simulator.control import ControlError, SimulatorControl
from llm_pipeline.simulator.embedded import Simulator
from llm_pipeline.simulator.messages import fingerprint
from llm_pipeline.simulator.process import SimulatorProcess
from llm_pipeline.simulator.stats import max_in_window

__all__ = [
    "KNOWN_MODELS",
    "ControlError",
    "Faults",
    "Latency",
    "Limits",
    "ScheduledFault",
    "Simulator",
    "SimulatorConfig",
    "SimulatorControl",
    "SimulatorProcess",
    "fingerprint",
    "max_in_window",
]
