"""Config objects: validated on construction, and the JSON form round-trips exactly."""

from __future__ import annotations

import json

import pytest

from llm_pipeline.simulator import KNOWN_MODELS, Faults, Latency, Limits, ScheduledFault, SimulatorConfig
from llm_pipeline.simulator.config import config_from_dict, faults_from_dict, to_dict


def test_round_trip_through_json():
    config = SimulatorConfig(
        api_key="k",
        limits=Limits(rpm=600, itpm=1e5, burst_seconds=5),
        model_limits={"claude-opus-5-5": Limits(rpm=60)},
        latency=Latency(0.05, 0.5, 0.001),
        faults=Faults(p429=0.1, outage=529, schedule=(ScheduledFault("hang", count=2, after=3, end_s=9.5),)),
        seed=7,
        batch_processing_s=3,
        exit_after_s=60,
    )
    assert config_from_dict(json.loads(json.dumps(to_dict(config)))) == config


def test_known_models_include_the_current_line_up():
    assert {"claude-haiku-5-5", "claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-2"} <= set(
        KNOWN_MODELS
    )
    assert {"claude-haiku-4-5", "claude-haiku-4-5-20251001"} <= set(KNOWN_MODELS)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Limits(rpm=-1),
        lambda: Limits(burst_seconds=0),
        lambda: Latency(median_s=-0.1),
        lambda: Faults(p_drop=0.6, p_hang=0.6),
        lambda: Faults(p_malformed=1.5),
        lambda: Faults(outage=503),
        lambda: ScheduledFault("429", count=-1),
        lambda: SimulatorConfig(context_window=0),
        lambda: SimulatorConfig(batch_p_errored=2),
        lambda: SimulatorConfig(batch_p_expired=-0.1),
        lambda: faults_from_dict({"p429": 0.1, "p_typo": 1}),
    ],
)
def test_invalid_settings_are_rejected(make):
    with pytest.raises((ValueError, TypeError)):
        make()


def test_limits_for_prefers_the_model_override():
    config = SimulatorConfig(limits=Limits(rpm=50), model_limits={"m": Limits(rpm=5)})
    assert config.limits_for("m").rpm == 5
    assert config.limits_for("other").rpm == 50


def test_public_surface_is_pinned():
    import llm_pipeline.simulator as simulator

    assert sorted(simulator.__all__) == [
        "ControlError",
        "Faults",
        "KNOWN_MODELS",
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
    assert all(hasattr(simulator, name) for name in simulator.__all__)
