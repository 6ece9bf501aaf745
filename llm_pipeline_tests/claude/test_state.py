"""The three state backends (memory, SQLite, Redis) behave the same: one scenario table, real time.

Redis runs the Lua twins of `gcra.py`/`circuit.py` on its own clock, so these tests are what keeps
the two implementations in step. Timings are relative seconds with generous tolerances.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator

import pytest

from llm_pipeline.claude.state import StateBackend, gcra, open_state
from llm_pipeline.claude.state.base import (
    BatchItem,
    LearnedLimits,
    LedgerEntry,
    LedgerSelection,
    PendingBatch,
)
from llm_pipeline.claude.state.circuit import BreakerPolicy
from llm_pipeline.claude.state.sqlite_waits import boot_id

TOL = 1.0  # one second of burst
COST = (0.1, 0.0, 0.0)  # 10 requests per second
SLACK = 0.05  # real time passing between calls
POLICY = BreakerPolicy(threshold=3, window_s=10.0, open_s=0.2, probe_ttl_s=0.3)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[StateBackend]:
    spec = {"memory": None, "sqlite": str(tmp_path / "state"), "redis": None}[request.param]
    if request.param == "redis":
        spec = request.getfixturevalue("redis_url")
    state = open_state(spec, time.time)
    assert state.kind == request.param
    try:
        yield state
    finally:
        await state.aclose()


async def test_reserve_burst_then_rate(backend: StateBackend) -> None:
    delays = [(await backend.limiter.reserve("m", COST, TOL)).delay for _ in range(12)]
    assert delays[:10] == pytest.approx([0.0] * 10, abs=SLACK)
    assert delays[10:] == pytest.approx([0.1, 0.2], abs=SLACK)


async def test_reserve_books_only_within_the_horizon(backend: StateBackend) -> None:
    for _ in range(10):
        await backend.limiter.reserve("m", COST, TOL)  # bucket empty: the next start is +0.1 s
    beyond = await backend.limiter.reserve("m", COST, TOL, horizon=0.05)
    assert not beyond.booked
    assert beyond.delay == pytest.approx(0.1, abs=SLACK)
    within = await backend.limiter.reserve("m", COST, TOL, horizon=0.5)
    assert within.booked
    assert within.delay == pytest.approx(0.1, abs=SLACK), "the refused attempt booked nothing"
    assert (await backend.limiter.reserve("m", COST, TOL)).delay == pytest.approx(0.2, abs=SLACK)


async def test_limiters_are_independent_per_name(backend: StateBackend) -> None:
    for _ in range(10):
        await backend.limiter.reserve("a", COST, TOL)
    assert (await backend.limiter.reserve("b", COST, TOL)).delay == pytest.approx(0.0, abs=SLACK)
    assert (await backend.limiter.reserve("a", COST, TOL)).delay == pytest.approx(0.1, abs=SLACK)


async def test_undo_latest_booking_is_exact(backend: StateBackend) -> None:
    for _ in range(10):
        await backend.limiter.reserve("m", COST, TOL)
    waiting = await backend.limiter.reserve("m", COST, TOL)
    assert waiting.delay == pytest.approx(0.1, abs=SLACK)
    await backend.limiter.undo("m", waiting, COST)
    again = await backend.limiter.reserve("m", COST, TOL)
    assert again.delay == pytest.approx(0.1, abs=SLACK), "the undone slot is free again"


async def test_undo_of_an_older_booking_keeps_later_ones_safe(backend: StateBackend) -> None:
    for _ in range(10):
        await backend.limiter.reserve("m", COST, TOL)
    older = await backend.limiter.reserve("m", COST, TOL)
    await backend.limiter.reserve("m", COST, TOL)  # +0.2 s, still queued
    await backend.limiter.undo("m", older, COST)
    after = await backend.limiter.reserve("m", COST, TOL)
    assert after.delay == pytest.approx(0.2, abs=SLACK), "the freed token at +0.1 s is still there at +0.2 s"


async def test_adjust_charges_and_gives_back(backend: StateBackend) -> None:
    await backend.limiter.reserve("m", COST, TOL)
    await backend.limiter.adjust("m", (0.9, 0.0, 0.0))  # now a full second is used
    assert (await backend.limiter.reserve("m", COST, TOL)).delay == pytest.approx(0.1, abs=SLACK)
    await backend.limiter.adjust("m", (-1.0, 0.0, 0.0))
    peek = await backend.limiter.peek("m")
    assert peek.backlogs[0] == pytest.approx(0.2, abs=SLACK), "not below the end of the queued booking"


async def test_reserve_applies_a_credit_first_in_the_same_transaction(backend: StateBackend) -> None:
    """The limiter's held give-backs ride on its next booking; an exact undo keeps them applied."""
    for _ in range(10):
        await backend.limiter.reserve("m", COST, TOL)
    credited = await backend.limiter.reserve("m", COST, TOL, credit=(-0.3, 0.0, 0.0))
    assert credited.delay == pytest.approx(0.0, abs=SLACK), "3 requests given back: room at once"
    await backend.limiter.undo("m", credited, COST)
    peek = await backend.limiter.peek("m")
    assert peek.backlogs[0] == pytest.approx(0.7, abs=SLACK), "undone booking gone, the credit stays"


async def test_sqlite_processes_interleaving_bookings_never_share_room(tmp_path) -> None:
    """Two backends on one directory (two processes) alternate bookings: each one's compare-and-swap
    fails after the other wrote, so it re-reads under the lock and the shared schedule stays exact."""
    first = open_state(str(tmp_path), time.time)
    second = open_state(str(tmp_path), time.time)
    try:
        delays = [
            (await (first if i % 2 else second).limiter.reserve("m", COST, TOL)).delay for i in range(12)
        ]
        assert delays[:10] == pytest.approx([0.0] * 10, abs=SLACK)
        assert delays[10:] == pytest.approx([0.1, 0.2], abs=SLACK)
        alone = [(await first.limiter.reserve("m", COST, TOL)).delay for _ in range(3)]
        assert alone == pytest.approx([0.3, 0.4, 0.5], abs=SLACK)
        assert first.limiter.swapped >= 2, "a process writing alone swaps instead of locking"  # type: ignore[attr-defined]
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_credit_is_kept_even_when_the_start_lies_beyond_the_horizon(backend: StateBackend) -> None:
    for _ in range(10):
        await backend.limiter.reserve("m", COST, TOL)
    polled = await backend.limiter.reserve("m", COST, TOL, horizon=0.0, credit=(-0.05, 0.0, 0.0))
    assert not polled.booked
    peek = await backend.limiter.peek("m")
    assert peek.backlogs[0] == pytest.approx(0.95, abs=SLACK), "the give-back was applied and stored"


async def test_cool_down_pauses_shifts_and_empties(backend: StateBackend) -> None:
    await backend.limiter.cool_down("m", 0.5, TOL)
    peek = await backend.limiter.peek("m")
    assert peek.delay == pytest.approx(0.5, abs=SLACK)
    assert peek.shift == pytest.approx(0.5, abs=SLACK)
    delays = [(await backend.limiter.reserve("m", COST, TOL)).delay for _ in range(6)]
    assert delays == pytest.approx([0.5] * 5 + [0.6], abs=SLACK), (
        "0.5 s of refill from empty, not a full burst"
    )


async def test_cool_down_with_nothing_queued_lets_the_buckets_refill(backend: StateBackend) -> None:
    """A pause that says nothing about the buckets (tolerance 0) holds every start, but the
    buckets keep refilling as the server's do; only a queued schedule is pushed back."""
    for _ in range(5):
        await backend.limiter.reserve("m", COST, TOL)  # half the bucket used, nobody queued
    await backend.limiter.cool_down("m", 0.5, 0.0)
    delays = [(await backend.limiter.reserve("m", COST, TOL)).delay for _ in range(11)]
    assert delays == pytest.approx([0.5] * 10 + [0.6], abs=SLACK), "full again when the pause ends"


async def test_raise_floor_only_moves_forward(backend: StateBackend) -> None:
    await backend.limiter.raise_floor("m", (0.95, None, None))
    assert (await backend.limiter.reserve("m", COST, TOL)).delay == pytest.approx(0.05, abs=SLACK)
    await backend.limiter.raise_floor("m", (0.0, None, None))
    assert (await backend.limiter.peek("m")).backlogs[0] == pytest.approx(1.05, abs=SLACK)


IV = (0.1, 1.0, 1.0)  # the intervals COST is expressed in: 10 requests per second
FASTER = (0.05, 1.0, 1.0)  # 20 per second
UNBOUNDED = (60.0, 60.0, 60.0)  # a catch-up limit beyond anything booked here


async def test_a_change_in_another_rate_converts_the_row_keeping_its_units(backend: StateBackend) -> None:
    """10 requests booked at 10/s fill a 1 s bucket; at 20/s the same bucket holds 20, and the 10
    booked are half a second of it: 10 more start at once, then one every 50 ms. Every op of every
    backend converts first (the Lua twin included), and back again for a caller at 10/s."""
    for _ in range(10):
        await backend.limiter.reserve("m", COST, TOL, intervals=IV)
    fast = (0.05, 0.0, 0.0)
    delays = [(await backend.limiter.reserve("m", fast, TOL, intervals=FASTER)).delay for _ in range(11)]
    assert delays == pytest.approx([0.0] * 10 + [0.05], abs=SLACK)
    slow = await backend.limiter.reserve("m", COST, TOL, intervals=IV)  # 21 booked = 2.1 s at 10/s
    assert slow.delay == pytest.approx(1.2, abs=SLACK)
    await backend.limiter.adjust("m", (-0.1, 0.0, 0.0), intervals=FASTER)
    await backend.limiter.raise_floor("m", (None, None, None), intervals=FASTER)
    await backend.limiter.cool_down("m", 0.0, 0.0, intervals=FASTER)
    assert (await backend.limiter.peek("m")).backlogs[0] == pytest.approx(1.1, abs=SLACK), (
        "in 20/s terms: 22 booked (1.1 s), the 0.1 s give-back floored by the queued booking's end"
    )


async def test_catch_up_gives_back_only_what_the_server_never_counted(backend: StateBackend) -> None:
    """10 booked at 10/s fill the 1 s bucket. The server answered the 5th saying 7 of 10 remained:
    two of the first five never reached it, so 0.2 s of the schedule comes back. The same news again
    changes nothing, and neither can it give back what was booked after it (3 more, say by another
    process): their units are in the row's count."""
    bookings = [await backend.limiter.reserve("m", COST, TOL, intervals=IV) for _ in range(10)]
    fifth = bookings[4]
    assert fifth.counts[0] == pytest.approx(5.0)
    news = (TOL - 7 * IV[0], None, None)  # seconds from full when the server admitted the 5th
    given = await backend.limiter.catch_up("m", 0.0, fifth.shift, news, fifth.counts, UNBOUNDED, IV)
    assert given[0] == pytest.approx(0.2, abs=SLACK)
    assert (await backend.limiter.peek("m")).backlogs[0] == pytest.approx(0.8, abs=SLACK)
    again = await backend.limiter.catch_up("m", 0.0, fifth.shift, news, fifth.counts, UNBOUNDED, IV)
    assert again == (0.0, 0.0, 0.0)
    for _ in range(3):
        await backend.limiter.reserve("m", COST, TOL, intervals=IV)
    await backend.limiter.catch_up("m", 0.0, fifth.shift, news, fifth.counts, UNBOUNDED, IV)
    assert (await backend.limiter.peek("m")).backlogs[0] == pytest.approx(1.1, abs=SLACK)


async def test_catch_up_gives_back_at_most_the_limit_it_is_given(backend: StateBackend) -> None:
    """The news alone grants nothing: only what the caller's unanswered requests booked comes back."""
    bookings = [await backend.limiter.reserve("m", COST, TOL, intervals=IV) for _ in range(10)]
    news = (0.0, None, None)  # the server's bucket was full: none of it counted
    given = await backend.limiter.catch_up("m", 0.0, 0.0, news, bookings[-1].counts, (0.1, 0.0, 0.0), IV)
    assert given[0] == pytest.approx(0.1)
    assert (await backend.limiter.peek("m")).backlogs[0] == pytest.approx(0.9, abs=SLACK)
    none = await backend.limiter.catch_up("m", 0.0, 0.0, news, bookings[-1].counts, (0.0, 0.0, 0.0), IV)
    assert none == (0.0, 0.0, 0.0)


async def test_catch_up_never_moves_forward_nor_past_a_pause_or_queued_bookings(
    backend: StateBackend,
) -> None:
    booked = [await backend.limiter.reserve("m", COST, TOL, intervals=IV) for _ in range(5)]
    full_news = (TOL - 10 * IV[0], None, None)
    await backend.limiter.catch_up("m", 0.0, 0.0, (TOL, None, None), booked[0].counts, UNBOUNDED, IV)
    assert (await backend.limiter.peek("m")).backlogs[0] == pytest.approx(0.5, abs=SLACK), "never forward"
    await backend.limiter.cool_down("m", 0.05, 0.0, IV)
    last = booked[-1]
    await backend.limiter.catch_up("m", 0.0, last.shift, full_news, last.counts, UNBOUNDED, IV)
    assert (await backend.limiter.peek("m")).backlogs[0] == pytest.approx(0.5, abs=SLACK), (
        "a cool-down since the booking (and the pause it holds): older news cannot undo it"
    )
    await asyncio.sleep(0.1)
    queued = [await backend.limiter.reserve("m", COST, TOL, intervals=IV) for _ in range(8)]
    assert queued[-1].delay > 0.05, "the last ones wait for their start"
    await backend.limiter.catch_up("m", 0.0, queued[0].shift, full_news, queued[0].counts, UNBOUNDED, IV)
    assert (await backend.limiter.peek("m")).backlogs[0] == pytest.approx(0.7, abs=SLACK), (
        "the 7 booked after it still count"
    )
    await backend.limiter.catch_up("m", 0.0, queued[-1].shift, full_news, queued[-1].counts, UNBOUNDED, IV)
    backlog = (await backend.limiter.peek("m")).backlogs[0]
    assert backlog == pytest.approx(queued[-1].delay + COST[0], abs=SLACK), "not before the queued ones end"


async def test_an_undo_restores_the_row_and_its_intervals(backend: StateBackend) -> None:
    for _ in range(10):
        await backend.limiter.reserve("m", COST, TOL, intervals=IV)
    waiting = await backend.limiter.reserve("m", COST, TOL, intervals=IV)
    await backend.limiter.undo("m", waiting, COST, intervals=FASTER)
    peek = await backend.limiter.peek("m")
    assert peek.backlogs[0] == pytest.approx(0.5, abs=SLACK), "10 requests at 20/s once the 11th is gone"


async def test_a_limits_file_from_before_the_rate_change_columns_is_upgraded(tmp_path) -> None:
    """An existing `limits.sqlite` (a deployment's DAGSTER_HOME) has no interval columns: opening it
    adds them, its rows (written in this boot, on the monotonic clock) keep their bookings, and they
    adopt the first caller's intervals as they are."""
    old_columns = gcra.FIELDS[:10]  # the row before the intervals were kept
    now = time.monotonic()
    with sqlite3.connect(tmp_path / "limits.sqlite") as conn:
        declared = ", ".join(f"{column} REAL NOT NULL" for column in old_columns)
        conn.execute(f"CREATE TABLE limiter (name TEXT PRIMARY KEY, {declared})")
        conn.execute("INSERT INTO limiter VALUES ('m', ?, 0, 0, 0, 0, 0, 0, 0, 0, 1)", (now + 1.0,))
        conn.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('boot', ?)", (boot_id(),))
    state = open_state(str(tmp_path), time.monotonic)
    try:
        before = time.monotonic()
        booked = await state.limiter.reserve("m", COST, TOL, intervals=IV)
        after = time.monotonic()
        due = now + 1.0 + COST[0] - TOL  # the full bucket it had stayed full
        assert due - after - 1e-3 <= booked.delay <= due - before + 1e-3
    finally:
        await state.aclose()


async def test_learned_limits_are_kept_listed_and_replaced(backend: StateBackend) -> None:
    assert await backend.learned.get("api.example/m") is None
    first = LearnedLimits("api.example/m", 4_000, None, 800_000, 59.5, 1_000.0, 900.0)
    await backend.learned.put(first)
    await backend.learned.put(LearnedLimits("api.example/n", 50, 50_000, 10_000, None, 1_001.0, 1_001.0))
    assert await backend.learned.get("api.example/m") == first
    lowered = LearnedLimits("api.example/m", 1_000, None, 800_000, 59.5, 1_002.0, 1_002.0)
    await backend.learned.put(lowered)
    assert [r.name for r in await backend.learned.all()] == ["api.example/m", "api.example/n"]
    assert (await backend.learned.all())[0] == lowered


async def test_breaker_opens_after_threshold_and_rejects(backend: StateBackend) -> None:
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "allow"
    transitions = [
        await backend.breaker.failure("m", POLICY, probe=False, error=f"boom {i}") for i in range(3)
    ]
    assert transitions == [None, None, "opened"]
    admission = await backend.breaker.admit("m", POLICY, claim=True)
    assert (admission.verdict, admission.state, admission.last_error) == ("reject", "open", "boom 2")
    assert 0 < admission.retry_in_s <= POLICY.open_s


async def test_breaker_failures_outside_window_do_not_count(backend: StateBackend) -> None:
    policy = BreakerPolicy(threshold=2, window_s=0.1, open_s=1.0, probe_ttl_s=1.0)
    assert await backend.breaker.failure("m", policy, probe=False, error="a") is None
    await asyncio.sleep(0.15)
    assert await backend.breaker.failure("m", policy, probe=False, error="b") is None
    assert await backend.breaker.failure("m", policy, probe=False, error="c") == "opened"


async def test_half_open_admits_exactly_one_probe_under_concurrency(backend: StateBackend) -> None:
    for i in range(3):
        await backend.breaker.failure("m", POLICY, probe=False, error=f"e{i}")
    await asyncio.sleep(POLICY.open_s + 0.02)
    looks = await backend.breaker.admit("m", POLICY, claim=False)
    assert (looks.verdict, looks.state) == ("allow", "half_open"), "a look does not claim the slot"
    verdicts = await asyncio.gather(*(backend.breaker.admit("m", POLICY, claim=True) for _ in range(20)))
    assert sorted(v.verdict for v in verdicts).count("probe") == 1
    assert {v.verdict for v in verdicts} == {"probe", "reject"}
    assert await backend.breaker.success("m", probe=True) == "closed"
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "allow"


async def test_failed_probe_reopens_and_crashed_probe_expires(backend: StateBackend) -> None:
    for i in range(3):
        await backend.breaker.failure("m", POLICY, probe=False, error=f"e{i}")
    await asyncio.sleep(POLICY.open_s + 0.02)
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "probe"
    assert await backend.breaker.failure("m", POLICY, probe=True, error="still down") == "reopened"
    assert (await backend.breaker.admit("m", POLICY, claim=True)).state == "open"
    await asyncio.sleep(POLICY.open_s + 0.02)
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "probe"  # ...and "crashes"
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "reject"
    await asyncio.sleep(POLICY.probe_ttl_s + 0.02)
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "probe", "the slot expired"
    await backend.breaker.release("m")
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "probe", "released slot is free"


async def test_success_while_closed_clears_the_failure_count(backend: StateBackend) -> None:
    for i in range(2):
        await backend.breaker.failure("m", POLICY, probe=False, error=f"e{i}")
    assert (await backend.breaker.admit("m", POLICY, claim=True)).failures == 2
    assert await backend.breaker.success("m", probe=False) is None
    assert (await backend.breaker.admit("m", POLICY, claim=True)).failures == 0
    assert await backend.breaker.failure("m", POLICY, probe=False, error="e") is None


async def test_only_the_probe_closes_the_breaker(backend: StateBackend) -> None:
    for i in range(3):
        await backend.breaker.failure("m", POLICY, probe=False, error=f"e{i}")
    assert await backend.breaker.success("m", probe=False) is None
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "reject"


def entry(fingerprint: str, created_at: float, key: str = "doc") -> LedgerEntry:
    return LedgerEntry(fingerprint, key, "claude-x", '{"id": "msg"}', 10, 5, created_at)


async def test_ledger_put_get_stats_prune(backend: StateBackend) -> None:
    assert await backend.ledger.get(["a"]) is None
    await backend.ledger.put(entry("a", 100.0))
    await backend.ledger.put(entry("b", 200.0, key="doc2"))
    await backend.ledger.put(entry("b", 300.0, key="doc2"))  # a rewrite replaces, never duplicates
    assert await backend.ledger.get(["zz", "b"]) == entry("b", 300.0, key="doc2")
    stats = await backend.ledger.stats()
    assert (stats.entries, stats.oldest, stats.newest, stats.input_tokens, stats.output_tokens) == (
        2,
        100.0,
        300.0,
        20,
        10,
    )
    assert await backend.ledger.prune(before=150.0) == 1
    assert await backend.ledger.get(["a"]) is None
    assert (await backend.ledger.stats()).entries == 1


async def test_more_concurrent_callers_than_connections_wait_for_one(backend: StateBackend) -> None:
    """Regression: 200 calls in flight on Redis state raised MaxConnectionsError (pool of 100)."""
    found = await asyncio.gather(
        *(backend.ledger.get([f"missing-{i}"]) for i in range(300)),
        *(backend.limiter.reserve("wide", (1e-6, 0.0, 0.0), TOL) for _ in range(300)),
    )
    assert found[:300] == [None] * 300
    assert len(found) == 600


def pending_batch(batch_id: str, created_at: float, namespace: str = "host-a", n: int = 2) -> PendingBatch:
    items = tuple(BatchItem(f"c{i}", f"{namespace}:c{i}", f"doc {i}/é", "claude-x") for i in range(n))
    return PendingBatch(batch_id, namespace, created_at, items)


async def test_pending_batches_are_recorded_listed_per_namespace_and_finished(backend: StateBackend) -> None:
    assert await backend.batches.pending("host-a") == []
    newer, older = pending_batch("msgbatch_2", 200.0), pending_batch("msgbatch_1", 100.0, n=3)
    elsewhere = pending_batch("msgbatch_3", 150.0, namespace="host-b")
    for batch in (newer, older, elsewhere):
        await backend.batches.record(batch)
    assert await backend.batches.pending("host-a") == [older, newer], "oldest first, items intact"
    assert await backend.batches.pending("host-b") == [elsewhere]
    await backend.batches.finish("msgbatch_1")
    await backend.batches.finish("msgbatch_unknown")  # finishing twice (a re-run) is harmless
    assert await backend.batches.pending("host-a") == [newer]
    assert await backend.batches.pending("host-b") == [elsewhere]


async def test_pending_batches_survive_reopening_the_sqlite_state(tmp_path) -> None:
    first = open_state(str(tmp_path), time.time)
    await first.batches.record(pending_batch("msgbatch_1", 100.0, n=5))
    await first.aclose()
    second = open_state(str(tmp_path), time.time)
    try:
        assert await second.batches.pending("host-a") == [pending_batch("msgbatch_1", 100.0, n=5)]
    finally:
        await second.aclose()


async def test_a_renewed_probe_keeps_its_slot_past_the_lease(backend: StateBackend) -> None:
    """A probe still in flight renews its lease, so nobody else probes; unrenewed, it lapses."""
    for i in range(3):
        await backend.breaker.failure("m", POLICY, probe=False, error=f"e{i}")
    await asyncio.sleep(POLICY.open_s + 0.02)
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "probe"
    for _ in range(3):  # 0.45 s in all, one and a half leases
        await asyncio.sleep(POLICY.probe_ttl_s / 2)
        await backend.breaker.renew("m", POLICY.probe_ttl_s)
        assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "reject"
    await asyncio.sleep(POLICY.probe_ttl_s + 0.05)
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "probe", "unrenewed: lapsed"


async def test_renewing_a_breaker_that_moved_on_changes_nothing(backend: StateBackend) -> None:
    await backend.breaker.renew("m", 60.0)
    assert (await backend.breaker.admit("m", POLICY, claim=True)).verdict == "allow"


async def test_a_claim_has_one_holder_until_released_stored_or_lapsed(backend: StateBackend) -> None:
    lease = 0.3
    assert await backend.claims.claim("k", "run-a", lease)
    assert await backend.claims.claim("k", "run-a", lease), "a holder may claim again (renew)"
    assert not await backend.claims.claim("k", "run-b", lease)
    await backend.claims.release("k", "run-b")  # not the holder: nothing happens
    assert not await backend.claims.claim("k", "run-b", lease)
    await backend.claims.release("k", "run-a")
    assert await backend.claims.claim("k", "run-b", lease), "released"
    await backend.ledger.put(entry("k", 100.0))
    assert not await backend.claims.claim("k", "run-c", lease), "answered: nothing left to claim"
    assert await backend.claims.claim("k", "run-c", lease, answered_too=True), "the answer ended the claim"
    await asyncio.sleep(lease + 0.1)
    assert await backend.claims.claim("k", "run-a", lease, answered_too=True), "lapsed: not renewed"


async def test_a_claim_and_the_ledger_check_are_one_atomic_step(backend: StateBackend) -> None:
    """Regression: a caller's lookup missed, the holder's answer landed, then the caller's claim
    succeeded (the holder's put had ended its claim) and the request was paid twice."""
    assert await backend.claims.claim("k", "holder", 5.0)
    await backend.ledger.put(entry("k", 1.0))  # ends the holder's claim
    assert not await backend.claims.claim("k", "late-caller", 5.0)
    assert await backend.claims.claim("other", "late-caller", 5.0)


async def test_renewed_claims_outlive_their_lease(backend: StateBackend) -> None:
    lease = 0.3
    assert await backend.claims.claim("k1", "run-a", lease)
    assert await backend.claims.claim("k2", "run-a", lease)
    for _ in range(3):
        await asyncio.sleep(lease / 2)
        await backend.claims.renew(["k1", "k2", "not-mine"], "run-a", lease)
    assert not await backend.claims.claim("k1", "run-b", lease)
    assert not await backend.claims.claim("k2", "run-b", lease)
    assert await backend.claims.claim("not-mine", "run-b", lease), "renew never takes a claim"


async def test_only_one_of_many_concurrent_claimers_wins(backend: StateBackend) -> None:
    won = await asyncio.gather(*(backend.claims.claim("k", f"run-{i}", 5.0) for i in range(20)))
    assert sum(won) == 1


async def test_ledger_entries_keep_their_step_and_are_deleted_by_selection(backend: StateBackend) -> None:
    rows = [
        LedgerEntry("h:f1", "doc-1", "claude-a", "{}", 1, 1, 1.0, "extracted_entities"),
        LedgerEntry("h:f2", "doc-2", "claude-a", "{}", 1, 1, 2.0, "classifications"),
        LedgerEntry("h:f3", "doc-3", "claude-b", "{}", 1, 1, 3.0, "classifications"),
        LedgerEntry("h:f4", "doc-4", "claude-a", "{}", 1, 1, 4.0, "corpus_report"),
        LedgerEntry("h:f5", "doc-5", "claude-a", "{}", 1, 1, 5.0, "corpus_report"),
    ]
    for row in rows:
        await backend.ledger.put(row)
    assert await backend.ledger.get(["h:f2"]) == rows[1], "the step round-trips"
    assert await backend.ledger.delete(LedgerSelection()) == 0, "an empty selection deletes nothing"
    assert await backend.ledger.delete(LedgerSelection(steps=("classifications",))) == 2
    assert await backend.ledger.delete(LedgerSelection(models=("claude-b",), keys=("doc-1",))) == 1
    assert await backend.ledger.delete(LedgerSelection(fingerprints=("f4",))) == 1, "bare fingerprint"
    assert [await backend.ledger.get([r.fingerprint]) for r in rows] == [None, None, None, None, rows[4]]
    assert await backend.ledger.delete(LedgerSelection(fingerprints=("h:f5",))) == 1, "namespaced"
    assert (await backend.ledger.stats()).entries == 0


async def test_sqlite_rows_of_another_boot_start_afresh_and_answers_stay(tmp_path) -> None:
    """The monotonic time base restarts at boot: limiter, breaker and claim rows from before a
    reboot would read as far in the future (stalling everyone), so they are dropped; answers stay."""
    first = open_state(str(tmp_path), time.monotonic)
    for _ in range(12):
        await first.limiter.reserve("m", COST, TOL)
    assert await first.claims.claim("k", "run-a", 600.0)
    await first.ledger.put(entry("a", 100.0))
    await first.aclose()
    for name in ("limits.sqlite", "ledger.sqlite"):
        conn = sqlite3.connect(tmp_path / name)
        conn.execute("UPDATE meta SET value = 'a-previous-boot' WHERE name = 'boot'")
        conn.commit()
        conn.close()
    second = open_state(str(tmp_path), time.monotonic)
    try:
        assert (await second.limiter.reserve("m", COST, TOL)).delay == pytest.approx(0.0, abs=SLACK)
        assert await second.claims.claim("k", "run-b", 600.0), "the old boot's claim is gone"
        assert await second.ledger.get(["a"]) == entry("a", 100.0)
    finally:
        await second.aclose()


async def test_sqlite_waits_for_a_locked_file_on_the_loop_not_inside_sqlite(tmp_path) -> None:
    """Regression (issue 14): SQLite's busy_timeout slept inside the C call and froze the event loop
    while another process held the lock. The wait must let other tasks run, and end with the lock."""
    state = open_state(str(tmp_path), time.monotonic, timeout_s=10.0)
    holder = sqlite3.connect(tmp_path / "limits.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def release_later() -> None:
        await asyncio.sleep(0.3)
        holder.execute("COMMIT")

    ticking = asyncio.create_task(ticker())
    try:
        booking, _ = await asyncio.gather(state.limiter.reserve("m", COST, TOL), release_later())
        assert booking.booked
        assert ticks >= 5, "other tasks ran while the booking waited for the lock"
    finally:
        ticking.cancel()
        holder.close()
        await state.aclose()


async def test_sqlite_gives_up_on_a_lock_held_past_the_timeout(tmp_path) -> None:
    state = open_state(str(tmp_path), time.monotonic, timeout_s=0.3)
    holder = sqlite3.connect(tmp_path / "ledger.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match=r"locked.*still locked after"):
            await state.ledger.put(entry("a", 1.0))
        assert await state.ledger.get(["a"]) is None, "reads go on under a writer's lock (WAL)"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await state.aclose()
