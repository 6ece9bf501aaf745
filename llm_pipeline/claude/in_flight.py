"""How many calls to keep in flight: enough to use the rate limit, by Little's law.

A process that calls at lambda requests per second, each call holding a worker W seconds outside
the limiter (the API's latency, plus retries and their backoff sleeps), has lambda x W calls in
flight on average (Little's law). lambda is what the limits in effect allow at the calls' observed
size, min(RPM, ITPM / input tokens per call, OTPM / output tokens per call) / 60; W and the sizes
are exponentially weighted means of the calls so far (the newest weighs `ALPHA`), so the bound
follows the latency as it changes. The bound is

    ceil(HEADROOM x lambda x W + room), at least 1, at most the cap

with HEADROOM = 2: the spare half covers the latency tail (a lognormal's p95 is ~2.3x its median
at sigma 0.5) and the backoff sleeps of retried calls, so the workers are never what holds the
rate back. `room` is the calls the limiter's buckets would let start right now (their level at
the calls' mean size): after a quiet spell a deep bucket (60 s of the rate) is there to be used at
once, not at the refill rate; once it is spent, `room` is about 0. The cap is
`LLM_PIPELINE_MAX_CONCURRENCY` when set, else `AUTO_MAX_IN_FLIGHT`.

Measured (issue 15, 3,000 RPM, 0.5 s median latency, lognormal sigma 0.5, 5.5% faults, 2,000
documents): 32 calls in flight took 39.7-40.0 s where the limit allows ~35.6 s, 64 took 36.8 s.
lambda x W is about 50/s x 0.6 s = 30 there: twice that is what 64 gave.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from llm_pipeline.claude.limits import LimitsInEffect

__all__ = ["ALPHA", "AUTO_MAX_IN_FLIGHT", "HEADROOM", "InFlightSizer"]

#: Without a cap: the SDK on aiohttp held ~1,200 calls/s at 200 in flight (ARCHITECTURE §3), and
#: 256 calls of ~1 s each cover 4,000 RPM four times over.
AUTO_MAX_IN_FLIGHT = 256
HEADROOM = 2.0
ALPHA = 0.05
#: W before the first call has finished (only reached when the limits were known at the start).
_PRIOR_HOLD_S = 1.0


class InFlightSizer:
    """Running means of what calls take, and the in-flight bound they give (module docstring)."""

    __slots__ = ("_hold_s", "_input", "_output", "ceiling")

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self._hold_s: float | None = None
        self._input: float | None = None
        self._output: float | None = None

    @staticmethod
    def _mean(old: float | None, new: float) -> float:
        return new if old is None else old + ALPHA * (new - old)

    def record(
        self, hold_s: float, input_tokens: int | None = None, output_tokens: int | None = None
    ) -> None:
        """One finished call: how long it held its worker outside the limiter, and what it used."""
        self._hold_s = self._mean(self._hold_s, max(0.0, hold_s))
        if input_tokens is not None and output_tokens is not None:
            self._input = self._mean(self._input, float(input_tokens))
            self._output = self._mean(self._output, float(output_tokens))

    def calls_per_s(self, limits: LimitsInEffect) -> float:
        """The requests per second `limits` allow at the calls' mean size (inf: nothing binds)."""
        sizes = (1.0, self._input, self._output)
        allowed = [
            rate / 60.0 / size
            for rate, size in zip(limits.rates, sizes, strict=True)
            if rate is not None and size is not None and size > 0
        ]
        return min(allowed, default=math.inf)

    def calls_in(self, room: Sequence[float]) -> float:
        """The calls that `room` (free units of each rate) holds at the calls' mean size."""
        sizes = (1.0, self._input or 0.0, self._output or 0.0)
        return min((free / size for free, size in zip(room, sizes, strict=True) if size > 0), default=0.0)

    def target(self, paced: Iterable[tuple[LimitsInEffect, Sequence[float]]]) -> int:
        """The in-flight bound for calls paced by (limits, room now) per model: the busiest model's."""
        hold = _PRIOR_HOLD_S if self._hold_s is None else self._hold_s
        wanted = max(
            (HEADROOM * self.calls_per_s(limits) * hold + self.calls_in(room) for limits, room in paced),
            default=math.inf,
        )
        if not math.isfinite(wanted):
            return self.ceiling
        return max(1, min(self.ceiling, math.ceil(wanted)))

    def __repr__(self) -> str:
        return (
            f"<InFlightSizer hold={self._hold_s} in={self._input} out={self._output} ceiling={self.ceiling}>"
        )
