"""A circuit breaker per model whose state every process of a deployment shares.

    closed ──threshold counted failures within window_s, none succeeded between──► open
    open ──open_s──► half-open
    half-open: exactly one caller (the probe) goes through; everyone else waits for its verdict
    probe succeeds ──► closed            probe fails ──► open again

Counted failures are the ones that say the upstream is unhealthy: 5xx, 529, timeouts, dropped
connections; a success clears the count (a few percent of 5xx at high throughput is noise that
retries absorb, an outage is a run of failures with no success). A 429 is the limiter's
business (the upstream is healthy, we are too fast) and a `PermanentError` is the request's
fault; neither counts. When a probe meets one of those, the
upstream did answer, so the probe counts as a success.

Fail-fast means `CircuitOpen` naming the breaker, the last upstream error and when the next probe
is due, without waiting for the limiter or the network: an open breaker always fails fast. In
half-open, a caller with somewhere else to go (a fallback model) fails fast too, while a caller
without one waits for the probe in flight to report (`wait=True`, polling the shared state): the
probe succeeding lets it through, the probe failing (open again) fails it fast. So a run that
starts after the open interval, once the upstream recovered, probes once and goes on however
many callers arrive together: concurrent callers never turn one probe into a systemic failure
that cancels the probe itself (which used to leave the breaker half-open for good).

The probe slot is claimed atomically with a short lease (`probe_ttl_s`) that the prober renews
while its call is in flight (`keep_probe`), so a prober that died frees the slot within one
lease, and one that was cancelled gives it back at once (`release`). The state lives in the
memory / SQLite / Redis backend (`state/circuit.py` holds the transitions). Circuit-breaker
libraries let every caller through in half-open, hence this small own one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from llm_pipeline.claude.clock import Clock, SystemClock
from llm_pipeline.claude.errors import (
    CircuitOpen,
    ConnectionFailed,
    Overloaded,
    ServerError,
    StateStoreError,
    Timeout,
)
from llm_pipeline.claude.state.base import BreakerStore
from llm_pipeline.claude.state.circuit import Admission, BreakerPolicy, Transition
from llm_pipeline.claude.state_errors import map_state_errors

__all__ = ["COUNTED", "PROBE_LEASE_S", "Breaker", "BreakerEvent", "Pass"]

COUNTED = (ServerError, Overloaded, Timeout, ConnectionFailed)
#: The probe's lease: renewed every third of it while the probe runs, so it only lapses when its
#: holder is gone (a crashed process, a frozen machine), and then within this many seconds.
PROBE_LEASE_S = 10.0
#: How often a caller waiting for someone else's probe looks at the shared state again.
PROBE_POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """A state change of one breaker, for the run log."""

    name: str
    transition: Transition
    last_error: str


@dataclass(frozen=True, slots=True)
class Pass:
    """Permission for one attempt; `probe` marks the single half-open trial."""

    probe: bool
    #: Failures were on record when admitted, so a success must clear them (else it writes nothing).
    dirty: bool = True


class Breaker:
    """Guards one model: `check` before waiting, `admit` before sending, `record` after."""

    __slots__ = ("_clock", "_key", "_last", "_on_event", "_poll_s", "_store", "name", "policy")

    def __init__(
        self,
        name: str,
        store: BreakerStore,
        *,
        threshold: int,
        window_s: float,
        open_s: float,
        probe_ttl_s: float,
        on_event: Callable[[BreakerEvent], None] | None = None,
        namespace: str = "",
        clock: Clock | None = None,
        poll_s: float = PROBE_POLL_S,
    ) -> None:
        self.name = name
        self._clock = clock or SystemClock()
        self._poll_s = poll_s
        #: Where the state lives: per endpoint, so a simulator's outage never opens the real API's.
        self._key = f"{namespace}/{name}" if namespace else name
        self.policy = BreakerPolicy(
            threshold=threshold, window_s=window_s, open_s=open_s, probe_ttl_s=probe_ttl_s
        )
        self._store = store
        self._on_event = on_event
        self._last: Admission | None = None

    @staticmethod
    def counts(error: BaseException) -> bool:
        """Does this error say the upstream is unhealthy?"""
        return isinstance(error, COUNTED)

    def _reject(self, admission: Admission) -> CircuitOpen:
        why = "a probe is in flight" if admission.state == "half_open" else "open"
        return CircuitOpen(
            f"circuit breaker {self.name!r} is {why} (next probe in {admission.retry_in_s:.1f}s); "
            f"last upstream error: {admission.last_error or 'unknown'}",
            model=self.name,
            last_error=admission.last_error,
        )

    async def check(self, *, wait: bool = False) -> Admission:
        """Fail fast (CircuitOpen) when this attempt would be rejected; claims nothing, returns the look.

        `wait=True`: in half-open, wait for the probe in flight to report (see the module docstring).
        """
        admission = await self._store.admit(self._key, self.policy, claim=False)
        if admission.verdict == "reject" and wait:
            admission = await self._wait_for_probe(admission, claim=False)
        self._last = admission
        if admission.verdict == "reject":
            raise self._reject(admission)
        return admission

    async def _wait_for_probe(self, admission: Admission, *, claim: bool) -> Admission:
        """While someone else's probe is in flight: closed (it succeeded), open (it failed), or the
        slot is free again (its prober gave up or died), whichever comes first."""
        while admission.verdict == "reject" and admission.state == "half_open":
            await self._clock.sleep(min(self._poll_s, admission.retry_in_s))
            admission = await self._store.admit(self._key, self.policy, claim=claim)
        return admission

    async def admit(self, checked: Admission | None = None, *, wait: bool = False) -> Pass:
        """Claim the right to send one attempt (the probe slot when half-open) or raise CircuitOpen.

        `checked` is what `check` said for this attempt when nothing happened in between (the
        limiter let it through without a wait): a closed breaker then needs no second read,
        since a closed breaker's admission claims nothing. The window this leaves is the time
        between `check` and the send; a breaker that opens within it lets this one attempt go,
        as if it had been sent a moment earlier. Half-open always claims its probe slot anew.
        """
        if checked is not None and checked.state == "closed" and checked.verdict == "allow":
            return Pass(probe=False, dirty=checked.failures > 0)
        admission = await self._store.admit(self._key, self.policy, claim=True)
        if admission.verdict == "reject" and wait:
            admission = await self._wait_for_probe(admission, claim=True)
        self._last = admission
        if admission.verdict == "reject":
            raise self._reject(admission)
        return Pass(probe=admission.verdict == "probe", dirty=admission.failures > 0)

    def keep_probe(self, granted: Pass, location: str = "") -> asyncio.Task[None] | None:
        """For the probe: a task renewing its slot's lease until cancelled (None for other passes)."""
        if not granted.probe:
            return None
        return asyncio.create_task(self._renew_probe(location))

    async def _renew_probe(self, location: str) -> None:
        lease = self.policy.probe_ttl_s
        try:
            while True:
                await self._clock.sleep(lease / 3)
                with map_state_errors(location):
                    await self._store.renew(self._key, lease)
        except StateStoreError:
            return  # the store is down: the call meets that itself; the lease then lapses

    async def record(self, granted: Pass, error: BaseException | None = None) -> None:
        """Report how the admitted attempt ended (None = success)."""
        if error is not None and self.counts(error):
            transition = await self._store.failure(
                self._key, self.policy, probe=granted.probe, error=str(error)
            )
        elif granted.probe or granted.dirty:
            transition = await self._store.success(self._key, probe=granted.probe)
        else:
            transition = None
        if transition is not None and self._on_event is not None:
            self._on_event(BreakerEvent(self.name, transition, "" if error is None else str(error)))

    async def release(self, granted: Pass) -> None:
        """The attempt was abandoned (cancelled) without a verdict: free the probe slot."""
        if granted.probe:
            await self._store.release(self._key)

    def __repr__(self) -> str:
        state = "unknown" if self._last is None else self._last.state
        return (
            f"<Breaker {self.name!r} state={state} threshold={self.policy.threshold}/{self.policy.window_s}s>"
        )
