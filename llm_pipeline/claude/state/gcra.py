"""GCRA arithmetic over several rates, booked together (pure functions; the backends store rows).

A row holds one theoretical arrival time (TAT) per rate and a shared pause. A request costs
`c_i = weight_i / rate_i` seconds of rate i. With burst tolerance `tau` (seconds), its earliest
start is

    s = max(now, paused_until, max_i(TAT_i + c_i - tau))

and booking it sets `TAT_i = max(TAT_i, s) + c_i` for every rate at once. A booking is made only
when `s` is within a short horizon of now (`reserve(..., horizon)`; further out the caller is told
`s` and books later): a give-back (`adjust`) can then still reach the next bookings, instead of
queued callers having booked `max_tokens` minutes ahead before any usage came back. Within one
process the limiter lets one caller book at a time, in arrival order, so release order stays FIFO.

Corrections after the fact (`adjust`): a charge counts from now. A give-back lowers TATs, but
while bookings still wait for their start it cannot go below the end of the latest one
(`last_start + c_i`): those callers will still spend their share at their start, and crediting
room "before" them would let the next caller start together with them. A cancelled waiter that
is still the latest change is undone exactly (`undo`, checked by the row's version); otherwise
its room is given back under the same floor.

A cool-down of D more seconds (`cool_down`, after a 429) holds every start until the pause
ends and shifts the whole schedule by D: TATs move by D, and `shift` grows by D so that callers
already waiting add D to their start (they compare the shift they booked under with the
current one); queued callers thus keep their spacing instead of all firing when the pause
ends. A 429 that says the buckets are empty passes `tolerance` = tau: every TAT is then also at
least `now + tau`, and the pause is no fresh burst. A pause that says nothing about the buckets
passes 0: with nothing queued, the TATs then stay where they are, and the buckets refill during
the pause as the server's do.

Changing rates under a live schedule (`retune`, run first by every change that passes the
caller's `intervals`, seconds per unit of each rate). A TAT is "seconds until the bucket is full
again" in units of its rate: `TAT_i - base = u_i * interval_i` for the `u_i` units still pending
(`base` = now, or the end of a running pause, which is time and not units). The row remembers the
intervals its TATs are expressed in; a caller with other intervals converts it first,

    TAT_i' = base + (TAT_i - base) * interval_i' / interval_i        (TAT_i > base)

(and the latest booking's end likewise from its start, which is a time and stays),
so what was consumed stays consumed, in units; only the speed it drains at changes (a doubled rate
drains 4 s of backlog in 2 s). But a bucket is never more than empty: a converted backlog is capped
at the caller's tolerance plus horizon (`intervals[3]`, when given). A row with no intervals yet
(0: new, or older than this) adopts the caller's. Every process converts to its own view, so two
that briefly disagree (one has learned a new limit, the other not yet) never mix units in one
booking. The burst (`tolerance`) is a parameter of each booking, not state.

Catching up with the server (`catch_up`). The row also counts, per rate, every unit ever booked
(`counts`, in units, so a retune leaves them alone): bookings and charges add to it, an exact undo
restores it, and nothing else takes from it (a give-back of an older booking would otherwise look
like fewer bookings since a later one: room that is not there). A response to a request sent at
`sent` reports the server's bucket as it was when it admitted that request, `backlog` seconds
from full; everything booked after that request (`counts_i` now minus the count its booking left,
`mark_i`) will be counted by the server too, or was already. So the server's bucket is now about
as full as

    TAT_i* = sent + backlog_i + (counts_i - mark_i) * interval_i

A row that assumes less room moves its TAT back towards `TAT_i*`, but by at most `limit_i`
seconds: what the caller booked for requests whose connection failed before any answer (the
server may never have seen them). `TAT_i*` is only an estimate (the request reached the server
after `sent`; one booked earlier may have arrived later), and taking the most generous of many
estimates would pick their largest error, so the news confirms give-backs, it never grants room
by itself. It is idempotent: two processes with the same news move the TAT to the same place, and
neither gives back more than its own unanswered bookings. Never forward (`raise_floor` does
that); not while a pause holds nor after a cool-down the request did not see (the `shift` it was
booked under): a 429 said the buckets were emptier than any older response showed.

The Redis backend runs the same formulas as a Lua script; keep the two in sync.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from llm_pipeline.claude.state.base import Booking

__all__ = [
    "FIELDS",
    "LimiterRow",
    "adjust",
    "book",
    "catch_up",
    "cool_down",
    "earliest_start",
    "peek",
    "raise_floor",
    "reserve",
    "retune",
    "undo",
]

#: Field order of `LimiterRow.fields()`; the SQLite columns and Redis hash fields use it too.
FIELDS = (
    "tat0",
    "tat1",
    "tat2",
    "paused_until",
    "shift",
    "last_start",
    "end0",
    "end1",
    "end2",
    "version",
    "iv0",
    "iv1",
    "iv2",
    "n0",
    "n1",
    "n2",
)


#: Float sums of many small costs drift by nanoseconds; a microsecond is far below any timing
#: that matters and keeps "exactly full" from being read as "one request over".
EPSILON = 1e-6
_RATES = range(3)


def _zeros() -> list[float]:
    return [0.0, 0.0, 0.0]


@dataclass(slots=True)
class LimiterRow:
    """Stored state of one limiter (times are seconds in the backend's time base)."""

    tats: list[float] = field(default_factory=_zeros)
    paused_until: float = 0.0
    #: Total seconds the schedule was pushed back by cool-downs, ever.
    shift: float = 0.0
    #: Start of the latest booking and, per rate, where it ends (`last_start + c_i`).
    last_start: float = 0.0
    last_ends: list[float] = field(default_factory=_zeros)
    #: Bumped by every change, so an undo can tell whether anything happened since its booking.
    version: float = 0.0
    #: Seconds per unit of each rate that the TATs are expressed in (0 = not known yet).
    intervals: list[float] = field(default_factory=_zeros)
    #: Units of each rate booked or charged ever (see `catch_up`).
    counts: list[float] = field(default_factory=_zeros)

    def fields(self) -> tuple[float, ...]:
        return (
            *self.tats,
            self.paused_until,
            self.shift,
            self.last_start,
            *self.last_ends,
            self.version,
            *self.intervals,
            *self.counts,
        )

    def copy(self) -> LimiterRow:
        return LimiterRow(
            self.tats[:],
            self.paused_until,
            self.shift,
            self.last_start,
            self.last_ends[:],
            self.version,
            self.intervals[:],
            self.counts[:],
        )

    @classmethod
    def from_fields(cls, values: Sequence[float]) -> LimiterRow:
        v = [float(x) for x in values]
        intervals = v[10:13] if len(v) >= 13 else _zeros()
        counts = v[13:16] if len(v) >= 16 else _zeros()
        return cls(
            tats=v[0:3],
            paused_until=v[3],
            shift=v[4],
            last_start=v[5],
            last_ends=v[6:9],
            version=v[9],
            intervals=intervals,
            counts=counts,
        )

    def backlogs(self, now: float) -> tuple[float, ...]:
        """Seconds until each rate's bucket is full again (0 = full)."""
        tats = self.tats
        return (max(0.0, tats[0] - now), max(0.0, tats[1] - now), max(0.0, tats[2] - now))


def retune(row: LimiterRow, now: float, intervals: Sequence[float]) -> None:
    """Express the row in `intervals` (see the module docstring); nothing to do when it already is.
    A fourth value, when given, caps each converted backlog (the caller's tolerance plus horizon)."""
    if not intervals:
        return
    current = row.intervals
    if current[0] == intervals[0] and current[1] == intervals[1] and current[2] == intervals[2]:
        return
    cap = intervals[3] if len(intervals) > 3 else math.inf
    base = max(now, row.paused_until)
    anchor = max(base, row.last_start)  # the latest booking still starts then; its cost converts
    tats, ends = row.tats, row.last_ends
    for i in _RATES:
        old, new = current[i], intervals[i]
        if old > 0 and old != new:
            factor = new / old
            if tats[i] > base:
                tats[i] = base + min((tats[i] - base) * factor, cap)
            if ends[i] > anchor:
                ends[i] = anchor + (ends[i] - anchor) * factor
        current[i] = new
    row.version += 1


# `reserve` and `adjust` run on every call: they loop over index ranges and change the row's lists
# in place, since comprehensions and zips each allocate objects the garbage collector must count.


def earliest_start(row: LimiterRow, now: float, costs: Sequence[float], tolerance: float) -> float:
    """The earliest start at which `costs` fit every rate (nothing is booked)."""
    tats = row.tats
    start = max(now, row.paused_until)
    for i in _RATES:
        candidate = tats[i] + costs[i] - tolerance
        if candidate > start + EPSILON:
            start = candidate
    return start


def reserve(
    row: LimiterRow, now: float, costs: Sequence[float], tolerance: float, horizon: float = math.inf
) -> tuple[float, bool]:
    """The earliest start that fits every rate, and whether it was booked (only within `horizon`)."""
    start = earliest_start(row, now, costs, tolerance)
    if start - now > horizon + EPSILON:
        return start, False
    tats, ends, counts, intervals = row.tats, row.last_ends, row.counts, row.intervals
    for i in _RATES:
        tats[i] = max(tats[i], start) + costs[i]
        ends[i] = max(ends[i], start + costs[i])
        if intervals[i] > 0:
            counts[i] += costs[i] / intervals[i]
    row.last_start = max(row.last_start, start)
    row.version += 1
    return start, True


def book(
    row: LimiterRow,
    now: float,
    costs: Sequence[float],
    tolerance: float,
    horizon: float,
    credit: Sequence[float],
    intervals: Sequence[float] = (),
) -> Booking:
    """`LimiterStore.reserve` as one change of `row`: express it in the caller's `intervals`, apply
    the held give-backs (`credit`, <= 0), then book `costs` if their start is within `horizon`. The
    row as it was before the booking goes into the result, so a cancelled waiter can be undone exactly."""
    retune(row, now, intervals)
    if any(credit):
        adjust(row, now, credit)
    before = row.fields()
    start, booked = reserve(row, now, costs, tolerance, horizon)
    return Booking(start - now, row.backlogs(now), before, row.version, row.shift, booked, tuple(row.counts))


def peek(row: LimiterRow, now: float) -> Booking:
    """`LimiterStore.peek`: how long a pause still holds every start, and how full the buckets are."""
    return Booking(max(0.0, row.paused_until - now), row.backlogs(now), shift=row.shift)


def adjust(row: LimiterRow, now: float, deltas: Sequence[float], intervals: Sequence[float] = ()) -> None:
    """Charge (positive) or give back (negative) seconds of each rate after the fact."""
    retune(row, now, intervals)
    queued = row.last_start > now
    tats, ends, counts, intervals = row.tats, row.last_ends, row.counts, row.intervals
    for i in _RATES:
        tat, delta = tats[i], deltas[i]
        if delta > 0 and intervals[i] > 0:
            counts[i] += delta / intervals[i]
        if delta > 0:
            tats[i] = max(tat, now) + delta
        elif queued:
            tats[i] = min(tat, max(tat + delta, ends[i]))
        else:
            tats[i] = tat + delta
    row.version += 1


def undo(
    row: LimiterRow,
    now: float,
    before: Sequence[float],
    version: float,
    costs: Sequence[float],
    intervals: Sequence[float] = (),
) -> None:
    """Take back a booking that never started: exactly if nothing changed since it was made."""
    if row.version == version:
        restored = LimiterRow.from_fields(before)
        row.tats, row.last_start, row.last_ends = restored.tats, restored.last_start, restored.last_ends
        row.intervals, row.counts = restored.intervals, restored.counts
        row.version += 1
        retune(row, now, intervals)
    else:
        adjust(row, now, [-c for c in costs], intervals)


def cool_down(
    row: LimiterRow, now: float, seconds: float, tolerance: float, intervals: Sequence[float] = ()
) -> None:
    """Pause everything until now + seconds; push a queued schedule back by the extension."""
    retune(row, now, intervals)
    extension = max(0.0, now + seconds - max(row.paused_until, now))
    row.paused_until = max(row.paused_until, now + seconds)
    row.shift += extension
    queued = row.last_start > now
    push = queued or tolerance > 0
    row.tats = [max(tat + extension if push else tat, now + tolerance) for tat in row.tats]
    if queued:
        row.last_start += extension
        row.last_ends = [end + extension for end in row.last_ends]
    row.version += 1


def raise_floor(
    row: LimiterRow, now: float, backlogs: Sequence[float | None], intervals: Sequence[float] = ()
) -> None:
    """Move TATs forward so each bucket is at least `backlog` seconds from full (never back)."""
    retune(row, now, intervals)
    row.tats = [
        tat if backlog is None else max(tat, now + backlog)
        for tat, backlog in zip(row.tats, backlogs, strict=True)
    ]
    row.version += 1


def catch_up(
    row: LimiterRow,
    now: float,
    age: float,
    shift: float,
    backlogs: Sequence[float | None],
    marks: Sequence[float],
    limits: Sequence[float],
    intervals: Sequence[float] = (),
) -> tuple[float, float, float]:
    """Move TATs back towards what a response sent `age` seconds ago shows, by at most `limits`
    seconds each (see the module docstring): `backlogs` per rate as the server reported them then
    (None: no news), `marks` the counts its booking left, `shift` the cool-down shift it was booked
    under. Returns the seconds of each rate given back."""
    retune(row, now, intervals)
    if row.shift != shift or row.paused_until > now:
        return (0.0, 0.0, 0.0)
    given = [0.0, 0.0, 0.0]
    sent = now - age
    queued = row.last_start > now
    tats, ends, counts, units = row.tats, row.last_ends, row.counts, row.intervals
    for i in _RATES:
        backlog = backlogs[i]
        if backlog is None or units[i] <= 0 or limits[i] <= 0:
            continue
        target = max(sent + backlog + (counts[i] - marks[i]) * units[i], tats[i] - limits[i])
        if queued:  # callers already booked still start when they were told
            target = max(target, ends[i])
        if target < tats[i] - EPSILON:
            given[i] = tats[i] - target
            tats[i] = target
    if any(given):
        row.version += 1
    return (given[0], given[1], given[2])
