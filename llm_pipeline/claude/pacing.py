"""Per model, the pace of its calls: a `Limiter` tuned by a `LimitLearner`; and the fan-out they allow.

Each model has its own limits (ANTHROPIC_FACTS §2), so its own limiter and learner, created on
first use. `in_flight()` is how many calls to have in flight: one while any model in use is at
first contact (nothing learned yet: its first request goes alone and its headers set the limits),
then what Little's law gives for the limits in effect and the calls' latency (`in_flight.py`).
"""

from __future__ import annotations

from collections.abc import Callable

from anthropic.types import Usage

from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.in_flight import InFlightSizer
from llm_pipeline.claude.limit_learning import LimitLearner
from llm_pipeline.claude.limiter import Limiter
from llm_pipeline.claude.limits import DEFAULT_BURST_S, DEFAULT_RATES
from llm_pipeline.claude.settings import ClaudeSettings
from llm_pipeline.claude.state.base import StateBackend

__all__ = ["Pacing"]


class Pacing:
    """The limiters and learners of one client, and its in-flight bound."""

    def __init__(
        self,
        settings: ClaudeSettings,
        state: StateBackend,
        *,
        clock: Clock,
        on_event: Callable[[object], None] | None = None,
    ) -> None:
        self._settings, self._state, self._clock, self._on_event = settings, state, clock, on_event
        self.limiters: dict[str, Limiter] = {}
        self.learners: dict[str, LimitLearner] = {}
        self._sizer = InFlightSizer(settings.in_flight_ceiling)

    def limiter(self, model: str) -> Limiter:
        if model not in self.limiters:
            rpm, itpm, otpm = DEFAULT_RATES  # until its learner tunes it, below
            limiter = Limiter(
                model,
                self._state.limiter,
                rpm=rpm,
                itpm=itpm,
                otpm=otpm,
                burst_seconds=DEFAULT_BURST_S,
                clock=self._clock,
                namespace=self._settings.endpoint,
            )
            self.learners[model] = LimitLearner(
                limiter,
                self._state.learned,
                model=model,
                endpoint=self._settings.endpoint,
                caps=self._settings.caps,
                clock=self._clock,
                on_event=self._on_event,
            )
            self.limiters[model] = limiter
        return self.limiters[model]

    def learner(self, model: str) -> LimitLearner:
        self.limiter(model)
        return self.learners[model]

    @property
    def max_in_flight(self) -> int:
        return self._sizer.ceiling

    def in_flight(self) -> int:
        learners = self.learners.values()
        if not learners or not all(learner.known for learner in learners):
            return 1
        return self._sizer.target(
            (learner.limits, self.limiters[learner.model].room()) for learner in learners
        )

    def record(self, hold_s: float, usage: Usage | None) -> None:
        """A finished call that reached the API: `hold_s` outside the limiter, `usage` if answered."""
        if usage is None:
            self._sizer.record(hold_s)
        else:
            used_in = usage.input_tokens + (usage.cache_creation_input_tokens or 0)
            self._sizer.record(hold_s, used_in, usage.output_tokens)

    async def flush(self) -> None:
        """Hand the limiters' held give-backs to the shared state."""
        for limiter in self.limiters.values():
            await limiter.flush()
