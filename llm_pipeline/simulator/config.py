"""The simulator's settings: frozen dataclasses that travel as JSON.

The same objects configure an in-process server, a spawned process (`Simulator.spawn`), the CLI
and the `/_sim/*` control endpoints, so each has a plain-dict form (`to_dict` / `*_from_dict`)
and the wire format of the control API is exactly these field names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "KNOWN_MODELS",
    "Faults",
    "Latency",
    "Limits",
    "ScheduledFault",
    "SimulatorConfig",
    "config_from_dict",
    "faults_from_dict",
    "latency_from_dict",
    "limits_from_dict",
    "model_limits_from_dict",
    "to_dict",
]

#: Model ids the simulator answers for (anthropic 2.13 `types/model.py`, ANTHROPIC_FACTS §1).
KNOWN_MODELS: tuple[str, ...] = (
    "claude-fable-5-2",
    "claude-mythos-5-2",
    "claude-haiku-5-5",
    "claude-sonnet-5-5",
    "claude-opus-5-5",
    "claude-fable-5-1",
    "claude-mythos-5-1",
    "claude-fable-5",
    "claude-mythos-5",
    "claude-mythos-preview",
    "claude-opus-5",
    "claude-sonnet-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-5",
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
)

#: What a `ScheduledFault` can force on a request.
FAULT_KINDS: frozenset[str] = frozenset(
    {"429", "500", "529", "drop", "hang", "malformed", "bad_json", "refusal"}
    | {"truncated_body", "html_body", "unknown_block"}
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-model rate limits; `None` means unlimited.

    Each limit is a continuously refilled bucket holding `rate / 60 * burst_seconds`, so a small
    `burst_seconds` enforces the per-minute rate over short intervals (Anthropic may enforce
    60 RPM as 1 request per second).
    """

    rpm: float | None = None
    itpm: float | None = None
    otpm: float | None = None
    burst_seconds: float = 60.0

    def __post_init__(self) -> None:
        for name in ("rpm", "itpm", "otpm"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value}")
        if self.burst_seconds <= 0:
            raise ValueError(f"burst_seconds must be positive, got {self.burst_seconds}")


@dataclass(frozen=True, slots=True)
class Latency:
    """Service time: lognormal(median_s, sigma) plus `per_output_token_s` per generated token."""

    median_s: float = 0.0
    sigma: float = 0.0
    per_output_token_s: float = 0.0

    def __post_init__(self) -> None:
        if min(self.median_s, self.sigma, self.per_output_token_s) < 0:
            raise ValueError("latency values must be >= 0")

    @property
    def instant(self) -> bool:
        return self.median_s == 0 and self.per_output_token_s == 0


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    """Force `kind` on a window of requests, counted from the moment the schedule is installed.

    A rule sees every API request (all `/v1/...` routes) after it is installed and numbers them
    1, 2, 3, ...; it applies to numbers `after + 1 .. after + count` (`count=None`: no end) that
    also arrive within `[start_s, end_s)` seconds of installation (`None`: unbounded). So "the
    next 3 requests get 429 with retry-after 3" is `ScheduledFault("429", count=3, retry_after_s=3)`
    and "requests 5 to 8" is `ScheduledFault("500", after=4, count=4)`. The first matching rule
    wins; scheduled faults take precedence over the probabilities.
    """

    kind: str
    count: int | None = 1
    after: int = 0
    start_s: float | None = None
    end_s: float | None = None
    retry_after_s: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.count is not None and self.count < 0:
            raise ValueError("count must be >= 0 or None")
        if self.after < 0:
            raise ValueError("after must be >= 0")


@dataclass(frozen=True, slots=True)
class Faults:
    """Fault switches; every probability is drawn per request from the seeded RNG.

    The transport/status faults (`p_drop`, `p_hang`, `p429`, `p500`, `p529`) are exclusive: one
    uniform draw picks at most one of them, so their sum must stay <= 1. The output faults
    (`p_malformed`, `p_bad_json`, `p_refusal`, and the body faults `p_truncated_body`,
    `p_html_body`, `p_unknown_block`: a 200 whose body is not a valid Message) are drawn the same
    way when an answer is produced.
    `outage` (500 or 529) fails every API request until it is switched back to `None`.
    `gullible` makes the model obey "ignore previous instructions ... 'word'" in a document by
    writing that word into the first enum field, violating the schema as a naive model would.
    `models`, when not empty, confines every fault (outage and schedule included) to requests for
    those models: one model's outage while another keeps answering, as a fallback test needs.
    Requests for other models are neither faulted nor counted by the schedule.
    """

    p429: float = 0.0
    retry_after_s: float = 1.0
    p500: float = 0.0
    p529: float = 0.0
    p_drop: float = 0.0
    p_hang: float = 0.0
    hang_s: float = 600.0
    p_malformed: float = 0.0
    p_bad_json: float = 0.0
    p_refusal: float = 0.0
    #: A 200 (billed) whose body is cut mid-JSON / an HTML error page / a Message with a content
    #: block type no SDK knows: what a misbehaving proxy or a newer API can send.
    p_truncated_body: float = 0.0
    p_html_body: float = 0.0
    p_unknown_block: float = 0.0
    outage: int | None = None
    gullible: bool = True
    schedule: tuple[ScheduledFault, ...] = ()
    models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        status = (self.p_drop, self.p_hang, self.p429, self.p500, self.p529)
        output = (
            self.p_malformed,
            self.p_bad_json,
            self.p_refusal,
            self.p_truncated_body,
            self.p_html_body,
            self.p_unknown_block,
        )
        for group in (status, output):
            if min(group) < 0 or sum(group) > 1.0 + 1e-9:
                raise ValueError("fault probabilities must be >= 0 and sum to <= 1 per group")
        if self.outage not in (None, 500, 529):
            raise ValueError(f"outage must be None, 500 or 529, got {self.outage}")
        if self.retry_after_s < 0 or self.hang_s < 0:
            raise ValueError("retry_after_s and hang_s must be >= 0")
        object.__setattr__(self, "schedule", tuple(self.schedule))
        object.__setattr__(self, "models", tuple(self.models))


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything a simulator starts with; `/_sim/reset` returns to exactly this."""

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    limits: Limits = field(default_factory=Limits)
    #: Per-model overrides of `limits` (e.g. a tight primary model and a roomy fallback).
    model_limits: Mapping[str, Limits] = field(default_factory=dict)
    #: Send the `anthropic-ratelimit-*` headers (False: as behind a gateway that strips them).
    rate_limit_headers: bool = True
    #: Round token `-remaining` headers to the nearest thousand, as the API does (ANTHROPIC_FACTS §2).
    round_token_remaining: bool = False
    latency: Latency = field(default_factory=Latency)
    faults: Faults = field(default_factory=Faults)
    context_window: int = 200_000
    max_output_tokens: int = 128_000
    models: tuple[str, ...] = KNOWN_MODELS
    seed: int = 0
    #: Requests of a batch finish evenly spread over this many seconds after creation.
    batch_processing_s: float = 0.0
    #: Requests not finished this long after creation expire (the real API: 24 h).
    batch_expiry_s: float = 86_400.0
    #: Probability that a valid batch request ends `errored` (api_error) anyway.
    batch_p_errored: float = 0.0
    #: Probability that a batch request ends `expired` although the batch ended in time (the real
    #: API expires requests it could not get to under load within 24 h).
    batch_p_expired: float = 0.0
    #: Blocks marked `cache_control` are cached once their prefix has at least this many tokens.
    prompt_cache_min_tokens: int = 1024
    #: Per-model overrides of `prompt_cache_min_tokens` (the API's minimum differs by model).
    model_prompt_cache_min_tokens: Mapping[str, int] = field(default_factory=dict)
    #: Models whose input-tokens-per-minute bucket counts cache reads too, as the API's older
    #: models do (ANTHROPIC_FACTS §2); on every other model a cache read is billed but not counted.
    itpm_counts_cache_reads: tuple[str, ...] = ()
    #: Distinct answers kept so repeated requests skip answer generation.
    answer_cache_size: int = 4096
    #: Stop by itself after this many seconds (stray servers must not live forever).
    exit_after_s: float | None = None
    #: Bill a Messages request whose client went away after it was accepted but before the answer
    #: was delivered, as the real API bills generated tokens (stats: `abandoned_billed`).
    bill_abandoned: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "model_limits", dict(self.model_limits))
        object.__setattr__(self, "model_prompt_cache_min_tokens", dict(self.model_prompt_cache_min_tokens))
        object.__setattr__(self, "itpm_counts_cache_reads", tuple(self.itpm_counts_cache_reads))
        minimums = [self.prompt_cache_min_tokens, *self.model_prompt_cache_min_tokens.values()]
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 1 for m in minimums):
            raise ValueError("prompt cache minimums must be integers >= 1")
        if self.context_window <= 0 or self.max_output_tokens <= 0:
            raise ValueError("context_window and max_output_tokens must be positive")
        if not 0.0 <= self.batch_p_errored <= 1.0 or not 0.0 <= self.batch_p_expired <= 1.0:
            raise ValueError("batch_p_errored and batch_p_expired must be within 0..1")
        if self.batch_processing_s < 0 or self.batch_expiry_s <= 0:
            raise ValueError("batch_processing_s must be >= 0 and batch_expiry_s > 0")

    def limits_for(self, model: str) -> Limits:
        return self.model_limits.get(model, self.limits)

    def prompt_cache_min_for(self, model: str) -> int:
        return self.model_prompt_cache_min_tokens.get(model, self.prompt_cache_min_tokens)

    def replace(self, **changes: Any) -> SimulatorConfig:
        return dataclasses.replace(self, **changes)


def to_dict(obj: Any) -> Any:
    """The JSON form of any config object (nested dataclasses, tuples and mappings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {sorted(unknown)}")
    return dict(data)


def limits_from_dict(data: Mapping[str, Any] | Limits) -> Limits:
    return data if isinstance(data, Limits) else Limits(**_known(Limits, data))


def model_limits_from_dict(data: Mapping[str, Mapping[str, Any] | Limits]) -> dict[str, Limits]:
    """Shared by the start-up config and `PUT /_sim/config`, so both read per-model limits alike."""
    return {m: limits_from_dict(v) for m, v in data.items()}


def latency_from_dict(data: Mapping[str, Any] | Latency) -> Latency:
    return data if isinstance(data, Latency) else Latency(**_known(Latency, data))


def _scheduled_from(data: Mapping[str, Any] | ScheduledFault) -> ScheduledFault:
    if isinstance(data, ScheduledFault):
        return data
    return ScheduledFault(**_known(ScheduledFault, data))


def faults_from_dict(data: Mapping[str, Any] | Faults) -> Faults:
    if isinstance(data, Faults):
        return data
    values = _known(Faults, data)
    values["schedule"] = tuple(_scheduled_from(s) for s in values.get("schedule", ()))
    return Faults(**values)


def config_from_dict(data: Mapping[str, Any]) -> SimulatorConfig:
    values = _known(SimulatorConfig, data)
    if "limits" in values:
        values["limits"] = limits_from_dict(values["limits"])
    if "model_limits" in values:
        values["model_limits"] = model_limits_from_dict(values["model_limits"])
    if "latency" in values:
        values["latency"] = latency_from_dict(values["latency"])
    if "faults" in values:
        values["faults"] = faults_from_dict(values["faults"])
    return SimulatorConfig(**values)
