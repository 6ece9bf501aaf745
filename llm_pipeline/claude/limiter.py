"""A GCRA rate limiter over requests, input tokens and output tokens, booked in one atomic step.

Anthropic limits every model by requests, input tokens and output tokens per minute, each a
continuously refilled bucket (ANTHROPIC_FACTS §2; ARCHITECTURE §3). For rate r_i per second and a
bucket that holds `burst_seconds` of it, a request of weights w_i costs c_i = w_i / r_i seconds of
rate i, and with tolerance tau = burst_seconds - margin its start is (virtual scheduling):

    s = max(now, paused_until, max_i(TAT_i + c_i - tau))      then   TAT_i = max(TAT_i, s) + c_i

All three TATs are booked at s in one backend transaction and the caller sleeps until s: release
order is arrival order (FIFO). 50 requests/s, 5 s burst, margin 0: 250 at once, then one per 20 ms.

Booking horizon: a caller books only when its start is within `horizon_s` (1 s) of now; further
out it waits at the head of this process's queue and asks again (every `poll_s` at most), so
queued callers never book `max_tokens` minutes ahead, out of reach of the give-backs below.

- output tokens are booked at `max_tokens`, input tokens at `token_estimate.estimate_input_tokens`
  (an over-estimate); `settle` charges or gives back the difference once `usage` arrives (input +
  cache writes). A charge is booked at once; a give-back is held and applied inside the next
  booking's transaction (or by `flush`), which can only under-use the account and saves a write.
- a caller cancelled while waiting gives its booking back (`state/gcra.py`: no one double-books).
- a request heavier than `heaviest_s` of a rate can never be served: `BadRequest`, not a wait.
  That is the bucket by default; learned limits pass a whole minute (a per-minute limit serves
  nothing larger), since a learned bucket is only a lower bound.
- `cool_down(until, empty=)` after a 429: one shared pause for everyone on this limiter (every
  process sharing its state); the schedule shifts by the pause, so queued callers keep their
  spacing. `empty` (the server's limiter said so) also empties every bucket: no fresh burst.
- `catch_down(remaining)`: the server's `-remaining` shows less room than we assume (someone else
  spends the same account): TATs move forward to match.
- `unanswered(reservation)` + `catch_up(reservation, remaining, age)`: a request whose connection
  failed before any answer keeps its booking (the server may have counted it), and its units join
  this process's pool of maybe-uncounted ones. When a later answer's `-remaining`, less everything
  booked since that request (every process's, counted in the shared row), shows more room than we
  assume, up to the pool comes back, keeping the margin (`gcra.catch_up`). Without this the
  schedule falls one request behind the server for every dropped connection the server never saw.
  Only for rates paced at exactly the server's limit: a cap or a share below the account's limit is
  ours to keep, whatever room the account has.
- `retune(rates, burst)`: new limits from now on; the shared row is converted to the new
  intervals by the next change (`gcra.retune`: consumed units stay consumed).

Safety margin: the tolerance is the burst minus `min(0.25 s, 25% of it)`. After a quiet spell
both buckets are full; ours starts draining when the first request is booked, the server's when
it arrives, and the refill the server wastes in between (full, waiting for that first arrival) is
room our schedule counted. The margin covers that delay, which is time, not a share of the
bucket: the one-way trip to the server, plus what the process does before the first request's
bytes leave, which the runner keeps short by starting a burst's calls a few per turn of the loop
(`stagger.py`; before that, 250 calls started together sent their first request 0.3 s after its
booking, and the margin had to be 0.75 s). Measured with the stagger, four processes starting
together on two cores, 2,400 RPM, a 3 s bucket, 4 runs each: quiet, 0.1 s met 0 or 1 limiter 429s
per run and 0.25 s none; with two busy loops beside them, 0.1 s met 4 or 5 (1%), 0.25 s 0 or 1.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from llm_pipeline.claude.clock import Clock
from llm_pipeline.claude.errors import BadRequest
from llm_pipeline.claude.limits import rounding_slack
from llm_pipeline.claude.rate_headers import RATE_NAMES
from llm_pipeline.claude.state.base import Booking, LimiterStore

__all__ = ["Limiter", "Reservation", "default_safety_margin"]

_NO_CREDIT = (0.0, 0.0, 0.0)
#: Book at most this far ahead, and ask again at least this often while waiting to book.
DEFAULT_HORIZON_S = 1.0
DEFAULT_POLL_S = 0.1


def default_safety_margin(burst_seconds: float) -> float:
    return min(0.25, 0.25 * burst_seconds)


@dataclass(frozen=True, slots=True)
class Reservation:
    """What one call booked, so `settle` can correct it; `waited_s` is how long `reserve` held it."""

    input_tokens: int
    output_tokens: int
    waited_s: float
    #: The caller slept for its turn (anything read before `reserve` may be stale by now).
    queued: bool = False
    #: Per rate, seconds until the bucket would be full again right after this booking.
    backlogs: tuple[float, ...] = ()
    #: Per rate, units booked ever (all processes) with this booking, and the cool-down shift it
    #: started under: what `catch_up` measures later bookings and pauses against.
    counts: tuple[float, ...] = ()
    shift: float = 0.0


class Limiter:
    """Paces one model's calls to the account's three rates; shared through a state backend."""

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
        self.name = name
        #: Where the state lives: per endpoint, so simulator runs never spend the real account's budget.
        self._key = f"{namespace}/{name}" if namespace else name
        self._store = store
        self._clock = clock
        self._fixed_margin = safety_margin_s
        self._intervals: tuple[float, ...] = ()
        #: Give-backs (seconds of each rate, <= 0) not yet applied to the shared state.
        self._credit: tuple[float, ...] = _NO_CREDIT
        #: Units of each rate booked for requests that got no answer, not yet confirmed by the server
        #: as counted or not (`catch_up`).
        self._unanswered = [0.0, 0.0, 0.0]
        self._backlogs: tuple[float, ...] = (0.0, 0.0, 0.0)
        self._backlogs_at = clock.now()
        self._horizon = horizon_s
        self._poll = poll_s
        self.retune((rpm, itpm, otpm), burst_seconds)
        self._waiters: dict[int, float] = {}
        self._ids = itertools.count()
        #: The FIFO of this process's callers waiting to book; made on the running loop when first used.
        self._turn: asyncio.Lock | None = None
        self._queued = 0

    def retune(
        self, rates: Sequence[float], burst_seconds: float, *, heaviest_s: float | None = None
    ) -> None:
        """Pace at `rates` (per minute) with a `burst_seconds` bucket from now on; `heaviest_s` is
        the largest cost in seconds of a rate accepted (default: the bucket after the margin)."""
        margin = default_safety_margin(burst_seconds) if self._fixed_margin is None else self._fixed_margin
        if not 0 <= margin < burst_seconds:
            raise ValueError(f"safety margin {margin} s must be in [0, burst_seconds={burst_seconds})")
        intervals = tuple(60.0 / rate for rate in rates)
        if self._intervals:  # what is held back and remembered keeps its units
            scale = [new / old for new, old in zip(intervals, self._intervals, strict=True)]
            self._credit = tuple(c * f for c, f in zip(self._credit, scale, strict=True))
            self._backlogs = tuple(b * f for b, f in zip(self._backlogs, scale, strict=True))
        self._limits = (tuple(rates), burst_seconds)
        self._intervals = intervals
        self._tolerance = burst_seconds - margin
        self._heaviest = self._tolerance if heaviest_s is None else max(heaviest_s, self._tolerance)
        self._capacities = tuple(self._tolerance / interval for interval in intervals)
        #: What every store change converts the shared row to (`gcra.retune`): these intervals, and
        #: a backlog no longer than a full bucket plus what may be booked ahead of now.
        self._scale = (*intervals, self._tolerance + self._horizon)

    @property
    def limits(self) -> tuple[tuple[float, ...], float]:
        """The rates (per minute) and burst (seconds) this limiter paces at."""
        return self._limits

    def room(self) -> tuple[float, ...]:
        """Units of each rate that could start now, as of the last booking seen (all processes')."""
        elapsed = self._clock.now() - self._backlogs_at
        return tuple(
            max(0.0, self._tolerance - max(0.0, backlog - elapsed)) / interval
            for backlog, interval in zip(self._backlogs, self._intervals, strict=True)
        )

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
        for rate, weight, cost, interval in zip(RATE_NAMES, weights, costs, self._intervals, strict=True):
            if cost > self._heaviest:
                return BadRequest(
                    f"{self.name}: request needs {weight:.0f} {rate} but the bucket holds only "
                    f"{self._heaviest / interval:.0f} (rate x burst_seconds minus margin); lower max_tokens "
                    "or the prompt, or raise the limit or burst_seconds"
                )
        raise AssertionError("no rate is over its bucket")

    def _remember(self, backlogs: tuple[float, ...]) -> None:
        self._backlogs, self._backlogs_at = backlogs, self._clock.now()

    async def reserve(self, input_tokens: int, output_tokens: int) -> Reservation:
        """Book one request now and sleep until its turn; a cancelled wait gives the booking back."""
        weights = (1.0, float(input_tokens), float(output_tokens))
        costs = self._costs(weights)
        if max(costs) > self._heaviest:
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
            await self._store.undo(self._key, booking, costs, self._scale)
            raise
        finally:
            del self._waiters[ticket]
        waited = self._clock.now() - began
        return Reservation(
            input_tokens, output_tokens, waited, queued, booking.backlogs, booking.counts, shift
        )

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
                        self._key, costs, self._tolerance, self._horizon, credit, self._scale
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
            await self._store.adjust(self._key, (0.0, max(d_in, 0.0), max(d_out, 0.0)), self._scale)

    async def flush(self) -> None:
        """Apply the held give-backs now (when the stack closes, so other processes get the room)."""
        credit, self._credit = self._credit, _NO_CREDIT
        if any(credit):
            await self._store.adjust(self._key, credit, self._scale)

    async def release(self, reservation: Reservation) -> None:
        """Give back a booking the server never counted (not sent, or turned away), held like a give-back."""
        costs = self._costs((1.0, float(reservation.input_tokens), float(reservation.output_tokens)))
        self._credit = tuple(c - d for c, d in zip(self._credit, costs, strict=True))

    async def cool_down(self, until: float, *, empty: bool = False) -> None:
        """Pause every caller of this limiter (in every process sharing its state) until `until`.

        `empty`: a response just reported an empty bucket (a limiter 429's headers), so the buckets
        count as empty and the schedule moves back by the pause; otherwise (a 429 with no rate-limit
        news) they keep their level and refill meanwhile.
        """
        seconds = until - self._clock.now()
        if seconds > 0:
            tolerance = self._tolerance if empty else 0.0
            await self._store.cool_down(self._key, seconds, tolerance, self._scale)

    async def catch_down(self, remaining: Sequence[float | None]) -> None:
        """Catch up with the server when what it says `remaining` shows less room than we assume."""
        floors: list[float | None] = []
        elapsed = self._clock.now() - self._backlogs_at
        for rate, (left, interval, known) in enumerate(
            zip(remaining, self._intervals, self._backlogs, strict=True)
        ):
            if left is None:
                floors.append(None)
                continue
            backlog = self._tolerance - (left + rounding_slack(rate, left)) * interval
            floors.append(backlog if backlog > max(0.0, known - elapsed) else None)
        if any(f is not None for f in floors):
            await self._store.raise_floor(self._key, floors, self._scale)

    def unanswered(self, reservation: Reservation) -> None:
        """A booked request got no answer at all (its connection failed): maybe never counted."""
        pool = self._unanswered
        pool[0] += 1.0
        pool[1] += reservation.input_tokens
        pool[2] += reservation.output_tokens

    async def catch_up(
        self, reservation: Reservation, remaining: Sequence[float | None], age_s: float
    ) -> None:
        """Give back unanswered requests' bookings that the server shows it never counted, from the
        `remaining` it reported for the request of `reservation`, sent `age_s` ago (None: a rate to
        leave alone)."""
        pool = self._unanswered
        if not reservation.counts or not any(pool):
            return
        burst, intervals = self._limits[1], self._intervals
        backlogs = [
            None if left is None else burst - max(0.0, left - rounding_slack(rate, left)) * interval
            for rate, (left, interval) in enumerate(zip(remaining, intervals, strict=True))
        ]
        if all(b is None for b in backlogs):
            return
        limits = [units * interval for units, interval in zip(pool, intervals, strict=True)]
        given = await self._store.catch_up(
            self._key, age_s, reservation.shift, backlogs, reservation.counts, limits, self._scale
        )
        for rate, (seconds, interval) in enumerate(zip(given, intervals, strict=True)):
            pool[rate] = max(0.0, pool[rate] - seconds / interval)

    def __repr__(self) -> str:
        levels = " ".join(
            f"{rate}={room:.1f}/{capacity:.1f}"
            for rate, room, capacity in zip(RATE_NAMES, self.room(), self._capacities, strict=True)
        )
        nxt = min(self._waiters.values(), default=None)
        release = "-" if nxt is None else f"{nxt - self._clock.now():+.3f}s"
        held = " ".join(f"{-c / i:.0f}" for c, i in zip(self._credit, self._intervals, strict=True))
        return (
            f"<Limiter {self.name!r} {levels} waiters={len(self._waiters) + self._queued} "
            f"(booked {len(self._waiters)}, queued {self._queued}) next_release={release} "
            f"held_back={held}>"
        )
