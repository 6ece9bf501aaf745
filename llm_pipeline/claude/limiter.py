"""A GCRA rate limiter over requests, input tokens and output tokens, booked in one atomic step.

Anthropic limits every model by requests, input tokens and output tokens per minute, each a
continuously refilled bucket (ANTHROPIC_FACTS §2; ARCHITECTURE §3). For rate r_i per second and a
bucket that holds `burst_seconds` of it, a request of weights w_i costs c_i = w_i / r_i seconds of
rate i, and with tolerance tau = burst_seconds - margin its start is (virtual scheduling):

    s = max(now, paused_until, max_i(TAT_i + c_i - tau))      then   TAT_i = max(TAT_i, s) + c_i

All three TATs are booked at s in one backend transaction, the caller sleeps until s, so arrival
order is release order (FIFO), no matter how different the weights. Example: 50 requests/s with a
5 s burst (margin 0) releases 250 requests at once, then one every 20 ms.

Booking horizon: a caller books only when its start is within `horizon_s` (1 s by default) of
now; further out it waits at the head of this process's queue and asks again (every `poll_s` at
most). Booking everything on arrival would let 32 queued callers book `max_tokens` each, minutes
ahead, before any call finished: the give-backs below could then never reach them, and throughput
would be set by `max_tokens` instead of by the tokens really used. Within a process only the head
of an asyncio FIFO books, so arrival order is still release order.

Booking and correcting:
- output tokens are booked at `max_tokens` (older Anthropic docs: OTPM is estimated from it up
  front); input tokens at `estimate_input_tokens` (UTF-8 bytes / 3: about 1.3x the usual 4
  characters per token, so an over-estimate for text). `settle` charges or gives back the
  difference once `usage` arrives (input + cache writes; cache reads do not count for ITPM).
  A charge is booked at once. A give-back is held by this limiter and applied inside its next
  booking's transaction (or by `flush`, when the stack closes): holding room back a little
  longer can only under-use the account, never over-book it, and it saves a shared-state
  transaction per call (with SQLite state, about a third of the limiter's cost per call).
- a caller cancelled while waiting gives its booking back: exactly when it was the latest
  booking; otherwise under the give-back floor of `state/gcra.py`, so no one double-books.
- a request heavier than a bucket (c_i > tau) can never be served: `BadRequest`, not a wait.
- `cool_down(until)` after a 429: one shared pause for everyone on this limiter (the state lives in
  the backend, so across processes too). The booked schedule shifts by the pause, so queued
  callers keep their spacing and the end of the pause is not a stampede. The pause itself says
  nothing about the buckets' level unless the server said so: a 429 from the server's rate
  limiter carries `anthropic-ratelimit-*` headers, which the client hands to `observe` first;
  when they report an empty bucket, every bucket counts as empty and the schedule moves back
  by the pause (several processes with their own limiters, each believing it owns the limit,
  then stop bursting after every pause). Such a 429 also keeps its attempt's booking (the client
  does not `release` it): handed back, it would refill what the server just called empty.
  A 429 without that news leaves the buckets' level alone.
- `observe(headers)`: when `anthropic-ratelimit-*-remaining` says less is left than we think
  (someone else spends the same account), TATs move forward to match. It also notes when a
  response last reported room in every bucket, for `shares_429`: a 429 that carried no
  rate-limit headers while the server kept reporting room (within `ROOM_FRESH_S`) is not about
  the account's buckets, so it does not pause everyone (retry.py). With 2% such 429s at 50
  requests/s, pausing everyone (and emptying the buckets) for each one's 1 s `retry-after` held
  throughput to ~40% of the limit (benchmarks, scenario 1).

Safety margin: the tolerance is the configured burst minus `min(1 s, 10% of it)`. Pacing exactly
at the server's bucket edge leaves no room for arrival jitter (event-loop scheduling, connection
set-up), so a steady stream would meet 429s; holding back a sliver of burst absorbs that jitter
without lowering the steady rate. Measured against the simulator (2,400 RPM, 2 s burst, 300
requests): margin 0 met one limiter 429, whose cool-down made the run ~15% slower; with the
margin, none, and the run took 103% of the time the limit allows.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.errors import BadRequest, RateLimited
from llm_pipeline.claude.state.base import Booking, LimiterStore

__all__ = [
    "RATE_NAMES",
    "ROOM_FRESH_S",
    "Limiter",
    "Reservation",
    "default_safety_margin",
    "estimate_input_tokens",
]

RATE_NAMES = ("requests", "input_tokens", "output_tokens")
_REMAINING_HEADERS = tuple(f"anthropic-ratelimit-{n.replace('_', '-')}-remaining" for n in RATE_NAMES)
#: Token `remaining` headers are rounded to the nearest thousand; do not react to that rounding.
_HEADER_SLACK = (0.0, 500.0, 500.0)
_IMAGE_TOKENS = 1_600
_PARAMS_COUNTED = ("system", "messages", "tools", "tool_choice", "output_config")
_NO_CREDIT = (0.0, 0.0, 0.0)
#: How recent a response reporting room in every bucket must be to rule out a header-less 429.
ROOM_FRESH_S = 1.0


#: Book at most this far ahead, and ask again at least this often while waiting to book.
DEFAULT_HORIZON_S = 1.0
DEFAULT_POLL_S = 0.1


def default_safety_margin(burst_seconds: float) -> float:
    return min(1.0, 0.1 * burst_seconds)


def estimate_input_tokens(params: Mapping[str, Any]) -> int:
    """A cheap, deliberately high guess of a request's input tokens, made before the call.

    Counts UTF-8 bytes of every string value (not keys) in the prompt-bearing parameters at 3
    bytes per token, plus a small per-request overhead; images count Anthropic's ~1,600-token cap
    instead of their base64 size.
    """
    text_bytes, images = 0, 0
    stack: list[Any] = [params.get(name) for name in _PARAMS_COUNTED]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            text_bytes += len(value.encode("utf-8"))
        elif isinstance(value, Mapping):
            if value.get("type") == "image":
                images += 1
                continue
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return math.ceil(text_bytes / 3) + 16 + images * _IMAGE_TOKENS


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one call booked, so `settle` can correct it; `waited_s` is how long `reserve` held it.

    The call's record shows a wider wait (limiter, breaker and retry pauses together), measured
    by the client around the whole call.
    """

    input_tokens: int
    output_tokens: int
    waited_s: float
    #: The caller slept for its turn (anything read before `reserve` may be stale by now).
    queued: bool = False


class Limiter:
    """Paces one model's calls to the account's three rates; shared through a state backend."""

    __slots__ = (
        "_backlogs",
        "_backlogs_at",
        "_capacities",
        "_clock",
        "_credit",
        "_empty_at",
        "_horizon",
        "_ids",
        "_intervals",
        "_key",
        "_poll",
        "_queued",
        "_room_at",
        "_store",
        "_tolerance",
        "_turn",
        "_waiters",
        "name",
    )

    def __init__(
        self,
        name: str,
        store: LimiterStore,
        *,
        rpm: float,
        itpm: float,
        otpm: float,
        burst_seconds: float,
        clock: Clock,
        safety_margin_s: float | None = None,
        namespace: str = "",
        horizon_s: float = DEFAULT_HORIZON_S,
        poll_s: float = DEFAULT_POLL_S,
    ) -> None:
        margin = default_safety_margin(burst_seconds) if safety_margin_s is None else safety_margin_s
        if not 0 <= margin < burst_seconds:
            raise ValueError(f"safety margin {margin} s must be in [0, burst_seconds={burst_seconds})")
        self.name = name
        #: Where the state lives: per endpoint, so simulator runs never spend the real account's budget.
        self._key = f"{namespace}/{name}" if namespace else name
        self._store = store
        self._clock = clock
        self._intervals = (60.0 / rpm, 60.0 / itpm, 60.0 / otpm)
        self._tolerance = burst_seconds - margin
        self._capacities = tuple(self._tolerance / interval for interval in self._intervals)
        #: Give-backs (seconds of each rate, <= 0) not yet applied to the shared state.
        self._credit: tuple[float, ...] = _NO_CREDIT
        self._backlogs: tuple[float, ...] = (0.0, 0.0, 0.0)
        self._backlogs_at = clock.now()
        self._waiters: dict[int, float] = {}
        self._ids = itertools.count()
        #: When a response last reported room in every rate-limit bucket (None: not lately), and
        #: when one last reported an empty bucket.
        self._room_at: float | None = None
        self._empty_at: float | None = None
        self._horizon = horizon_s
        self._poll = poll_s
        #: The FIFO of this process's callers waiting to book; made on the running loop when first used.
        self._turn: asyncio.Lock | None = None
        self._queued = 0

    @property
    def capacities(self) -> tuple[float, ...]:
        """Units each bucket holds (requests, input tokens, output tokens) after the margin."""
        return self._capacities

    @property
    def credit(self) -> tuple[float, ...]:
        """Seconds of each rate given back by `settle` but not yet applied to the shared state."""
        return self._credit

    def _costs(self, weights: tuple[float, ...]) -> tuple[float, ...]:
        intervals = self._intervals
        return (weights[0] * intervals[0], weights[1] * intervals[1], weights[2] * intervals[2])

    def _too_heavy(self, weights: tuple[float, ...], costs: tuple[float, ...]) -> BadRequest:
        for rate, weight, cost, capacity in zip(RATE_NAMES, weights, costs, self._capacities, strict=True):
            if cost > self._tolerance:
                return BadRequest(
                    f"{self.name}: request needs {weight:.0f} {rate} but the bucket holds only "
                    f"{capacity:.0f} (rate x burst_seconds minus margin); lower max_tokens or the "
                    "prompt, or raise the limit or burst_seconds"
                )
        raise AssertionError("no rate is over its bucket")

    def _remember(self, backlogs: tuple[float, ...]) -> None:
        self._backlogs, self._backlogs_at = backlogs, self._clock.now()

    async def reserve(self, input_tokens: int, output_tokens: int) -> Reservation:
        """Book one request now and sleep until its turn; a cancelled wait gives the booking back."""
        weights = (1.0, float(input_tokens), float(output_tokens))
        costs = self._costs(weights)
        if max(costs) > self._tolerance:
            raise self._too_heavy(weights, costs)
        began = self._clock.now()
        booking, queued = await self._book(costs)
        ticket, start, shift = next(self._ids), self._clock.now() + booking.delay, booking.shift
        self._waiters[ticket] = start
        try:
            while (delay := start - self._clock.now()) > 0:
                queued = True
                await self._clock.sleep(delay)
                seen = await self._store.peek(self._key)
                start += seen.shift - shift
                shift = seen.shift
                start = max(start, self._clock.now() + seen.delay)
                self._waiters[ticket] = start
        except BaseException:
            await self._store.undo(self._key, booking, costs)
            raise
        finally:
            del self._waiters[ticket]
        return Reservation(input_tokens, output_tokens, self._clock.now() - began, queued)

    async def _book(self, costs: tuple[float, ...]) -> tuple[Booking, bool]:
        """Wait for this caller's turn (FIFO), then for its start to come within the horizon; book.

        Every attempt hands the held give-backs to the store, which applies them first in the same
        atomic change. Also says whether the caller had to wait (for the turn, or for the horizon).
        """
        if self._turn is None:
            self._turn = asyncio.Lock()
        waited = self._turn.locked()
        self._queued += 1
        try:
            async with self._turn:
                while True:
                    credit, self._credit = self._credit, _NO_CREDIT
                    booking = await self._store.reserve(
                        self._key, costs, self._tolerance, self._horizon, credit
                    )
                    self._remember(booking.backlogs)
                    if booking.booked:
                        return booking, waited
                    waited = True
                    await self._clock.sleep(min(booking.delay - self._horizon, self._poll))
        finally:
            self._queued -= 1

    async def settle(self, reservation: Reservation, input_tokens: int, output_tokens: int) -> None:
        """Charge the difference between what was booked and what was used now; hold a give-back."""
        deltas = self._costs(
            (
                0.0,
                float(input_tokens - reservation.input_tokens),
                float(output_tokens - reservation.output_tokens),
            )
        )
        _, d_in, d_out = deltas  # the request itself is never corrected
        if d_in < 0 or d_out < 0:
            credit = self._credit
            self._credit = (credit[0], credit[1] + min(d_in, 0.0), credit[2] + min(d_out, 0.0))
        if d_in > 0 or d_out > 0:
            await self._store.adjust(self._key, (0.0, max(d_in, 0.0), max(d_out, 0.0)))

    async def flush(self) -> None:
        """Apply the held give-backs now (when the stack closes, so other processes get the room)."""
        credit, self._credit = self._credit, _NO_CREDIT
        if any(credit):
            await self._store.adjust(self._key, credit)

    async def release(self, reservation: Reservation) -> None:
        """Give back a booking the server never counted (not sent, or turned away), held like a give-back."""
        costs = self._costs((1.0, float(reservation.input_tokens), float(reservation.output_tokens)))
        self._credit = tuple(c - d for c, d in zip(self._credit, costs, strict=True))

    async def cool_down(self, until: float) -> None:
        """Pause every caller of this limiter (in every process sharing its state) until `until`.

        When a response just reported an empty bucket (a limiter 429's headers, via `observe`), the
        buckets count as empty and the schedule moves back by the pause, as for every 429 before;
        otherwise (a 429 with no rate-limit news) they keep their level and refill meanwhile.
        """
        now = self._clock.now()
        seconds = until - now
        if seconds > 0:
            empty = self._empty_at is not None and now - self._empty_at <= ROOM_FRESH_S
            await self._store.cool_down(self._key, seconds, self._tolerance if empty else 0.0)

    async def observe(self, headers: Mapping[str, str]) -> None:
        """Catch up with the server when its `remaining` headers show less room than we assume."""
        floors: list[float | None] = []
        reported = empty = 0
        now = self._clock.now()
        elapsed = now - self._backlogs_at
        for header, slack, interval, known in zip(
            _REMAINING_HEADERS, _HEADER_SLACK, self._intervals, self._backlogs, strict=True
        ):
            raw = headers.get(header)
            try:
                remaining = float(raw) if raw is not None else math.nan
            except ValueError:
                remaining = math.nan
            if remaining == remaining:  # not NaN: the server reported this bucket
                reported += 1
                empty += remaining <= 0
            backlog = self._tolerance - (remaining + slack) * interval
            floors.append(backlog if backlog > max(0.0, known - elapsed) else None)
        if reported:
            self._room_at = None if empty else now
            if empty:
                self._empty_at = now
        if any(f is not None for f in floors):
            await self._store.raise_floor(self._key, floors)

    def shares_429(self, error: RateLimited) -> bool:
        """Should this 429 pause everyone on this limiter (see `observe`)?"""
        if error.reports_limits or self._room_at is None:
            return True
        return self._clock.now() - self._room_at > ROOM_FRESH_S

    def __repr__(self) -> str:
        elapsed = self._clock.now() - self._backlogs_at
        levels = " ".join(
            f"{rate}={max(0.0, self._tolerance - max(0.0, b - elapsed)) / i:.1f}/{self._tolerance / i:.1f}"
            for rate, b, i in zip(RATE_NAMES, self._backlogs, self._intervals, strict=True)
        )
        nxt = min(self._waiters.values(), default=None)
        release = "-" if nxt is None else f"{nxt - self._clock.now():+.3f}s"
        held = " ".join(f"{-c / i:.0f}" for c, i in zip(self._credit, self._intervals, strict=True))
        return (
            f"<Limiter {self.name!r} {levels} waiters={len(self._waiters) + self._queued} "
            f"(booked {len(self._waiters)}, queued {self._queued}) next_release={release} "
            f"held_back={held}>"
        )
