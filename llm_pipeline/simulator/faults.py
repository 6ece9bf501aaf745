"""Deciding which fault, if any, a request meets.

Precedence, per API request (every `/v1/...` route, after auth; only requests for `Faults.models`
when that is set):

1. `outage` set: the request fails with that status (500 or 529);
2. the first `ScheduledFault` whose window holds this request (see `ScheduledFault`);
3. one uniform draw from the seeded RNG against the cumulative probabilities
   drop, hang, 429, 500, 529 (in that order; the rest of the unit interval is "no fault").

Output faults (malformed, bad_json, refusal, and the body faults truncated_body, html_body,
unknown_block) are decided the same way when an answer is made: a scheduled one travels with the
request's `Decision`, otherwise one draw against p_malformed, p_bad_json, p_refusal,
p_truncated_body, p_html_body, p_unknown_block.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from llm_pipeline.simulator.config import Faults, ScheduledFault

__all__ = ["BODY_KINDS", "OUTPUT_KINDS", "Decision", "FaultInjector"]

#: Faults that replace the whole 200 body (see `bodies.py`), not the answer inside it.
BODY_KINDS = frozenset({"truncated_body", "html_body", "unknown_block"})
OUTPUT_KINDS = frozenset({"malformed", "bad_json", "refusal"}) | BODY_KINDS


@dataclass(frozen=True, slots=True)
class Decision:
    """The fault for one request: `kind` (status/transport) and/or `output`; both may be None."""

    kind: str | None = None
    retry_after_s: float = 1.0
    output: str | None = None


_NONE = Decision()


class FaultInjector:
    """Holds the live `Faults` and the schedule's request numbering since installation."""

    def __init__(
        self, faults: Faults, rng: random.Random, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rng = rng
        self._clock = clock
        self.install(faults)

    def install(self, faults: Faults) -> None:
        """Replace every switch; the schedule numbers requests from now on."""
        self.faults = faults
        self._installed_at = self._clock()
        self._seen = 0
        self._status_thresholds = self._cumulative(
            ("drop", faults.p_drop),
            ("hang", faults.p_hang),
            ("429", faults.p429),
            ("500", faults.p500),
            ("529", faults.p529),
        )
        self._output_thresholds = self._cumulative(
            ("malformed", faults.p_malformed),
            ("bad_json", faults.p_bad_json),
            ("refusal", faults.p_refusal),
            ("truncated_body", faults.p_truncated_body),
            ("html_body", faults.p_html_body),
            ("unknown_block", faults.p_unknown_block),
        )

    @staticmethod
    def _cumulative(*pairs: tuple[str, float]) -> tuple[tuple[float, str], ...]:
        total = 0.0
        result = []
        for kind, p in pairs:
            if p > 0:
                total += p
                result.append((total, kind))
        return tuple(result)

    def _scheduled(self) -> ScheduledFault | None:
        if not self.faults.schedule:
            return None
        elapsed = self._clock() - self._installed_at
        n = self._seen
        for rule in self.faults.schedule:
            if n <= rule.after or (rule.count is not None and n > rule.after + rule.count):
                continue
            if rule.start_s is not None and elapsed < rule.start_s:
                continue
            if rule.end_s is not None and elapsed >= rule.end_s:
                continue
            return rule
        return None

    def on_request(self, model: str | None = None) -> Decision:
        """The fault for the next API request; `model` matters only when `Faults.models` is set."""
        faults = self.faults
        if faults.models and model not in faults.models:
            return _NONE
        self._seen += 1
        if faults.outage is not None:
            return Decision(kind=f"outage{faults.outage}")
        rule = self._scheduled()
        if rule is not None:
            retry_after = faults.retry_after_s if rule.retry_after_s is None else rule.retry_after_s
            if rule.kind in OUTPUT_KINDS:
                return Decision(output=rule.kind)
            return Decision(kind=rule.kind, retry_after_s=retry_after)
        if self._status_thresholds:
            u = self._rng.random()
            for threshold, kind in self._status_thresholds:
                if u < threshold:
                    return Decision(kind=kind, retry_after_s=faults.retry_after_s)
        return _NONE

    def output_fault(self, decision: Decision) -> str | None:
        """The output fault for an answer about to be sent (scheduled, else drawn)."""
        if decision.output is not None:
            return decision.output
        if self._output_thresholds:
            u = self._rng.random()
            for threshold, kind in self._output_thresholds:
                if u < threshold:
                    return kind
        return None

    def __repr__(self) -> str:
        return f"<FaultInjector seen={self._seen} {self.faults}>"
