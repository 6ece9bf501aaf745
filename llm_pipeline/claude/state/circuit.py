"""The breaker's state machine as pure functions over a stored row (the backends persist rows).

    closed ──(threshold counted failures within window, no success in between)──► open
    open ──(open_s elapsed)──► half-open: the first caller claims the probe slot, others fail fast
    half-open ──probe succeeds──► closed      half-open ──probe fails──► open again

A success while closed clears the count: at high throughput a steady trickle of 5xx (a few
percent, which retries absorb) would otherwise reach any fixed threshold within any window,
while an outage, where nothing succeeds, reaches it at once.

`opened_until == 0` means closed; `now < opened_until` open; otherwise half-open. The probe slot
is a claim with a short lease (`probe_until`) that the prober renews while its call is in flight,
so a prober that died frees it within one lease, and one that was cancelled gives it back at once.
The Redis backend runs the same transitions as a Lua script; keep the two in sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "Admission",
    "BreakerPolicy",
    "BreakerRow",
    "admit",
    "on_failure",
    "on_success",
    "release",
    "renew",
]

Verdict = Literal["allow", "probe", "reject"]
Transition = Literal["opened", "reopened", "closed"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int
    window_s: float
    open_s: float
    #: How long a claimed probe slot stays claimed unless its holder renews it (`renew`).
    probe_ttl_s: float


@dataclass(slots=True)
class BreakerRow:
    opened_until: float = 0.0
    probe_until: float = 0.0
    failures: list[float] = field(default_factory=list)
    last_error: str = ""

    def state(self, now: float) -> Literal["closed", "open", "half_open"]:
        if self.opened_until == 0.0:
            return "closed"
        return "open" if now < self.opened_until else "half_open"


@dataclass(frozen=True, slots=True)
class Admission:
    verdict: Verdict
    state: Literal["closed", "open", "half_open"]
    last_error: str
    #: Seconds until a probe may be tried (0 when closed or half-open).
    retry_in_s: float
    #: Counted failures on record (closed state), so a success knows whether it must clear them.
    failures: int = 0


def admit(row: BreakerRow, now: float, policy: BreakerPolicy, *, claim: bool) -> Admission:
    """Closed admits; open rejects; half-open admits one prober (`claim=False` only looks)."""
    state = row.state(now)
    if state == "closed":
        return Admission("allow", state, row.last_error, 0.0, len(row.failures))
    if state == "open":
        return Admission("reject", state, row.last_error, row.opened_until - now)
    if row.probe_until > now:
        return Admission("reject", state, row.last_error, row.probe_until - now)
    if not claim:
        return Admission("allow", state, row.last_error, 0.0)
    row.probe_until = now + policy.probe_ttl_s
    return Admission("probe", state, row.last_error, 0.0)


def on_failure(
    row: BreakerRow, now: float, policy: BreakerPolicy, *, probe: bool, error: str
) -> Transition | None:
    """Count a failure that says the upstream is unhealthy; open when the window is full."""
    row.last_error = error
    if probe:
        row.opened_until, row.probe_until, row.failures = now + policy.open_s, 0.0, []
        return "reopened"
    if row.state(now) != "closed":
        return None
    recent = [t for t in row.failures if t > now - policy.window_s] + [now]
    row.failures = recent[-policy.threshold :]
    if len(row.failures) >= policy.threshold:
        row.opened_until, row.probe_until, row.failures = now + policy.open_s, 0.0, []
        return "opened"
    return None


def on_success(row: BreakerRow, *, probe: bool) -> Transition | None:
    """A success clears the failure count; only the probe's closes an open breaker."""
    if row.opened_until == 0.0:
        row.failures = []
        return None
    if not probe:
        return None
    row.opened_until, row.probe_until, row.failures = 0.0, 0.0, []
    return "closed"


def release(row: BreakerRow) -> None:
    """A prober that was cancelled gives the slot back without a verdict."""
    row.probe_until = 0.0


def renew(row: BreakerRow, now: float, lease_s: float) -> None:
    """A probe still in flight holds its slot `lease_s` longer; nothing once the breaker moved on."""
    if row.state(now) == "half_open" and row.probe_until > 0.0:
        row.probe_until = max(row.probe_until, now + lease_s)
