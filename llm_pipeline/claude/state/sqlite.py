"""SQLite state (`settings.state` = a directory): shared by every process on one machine.

Limiter and breaker rows live in `limits.sqlite`, the ledger (and the pending batches of batch
mode) in `ledger.sqlite`, so large ledger
writes never hold the lock the hot limiter path needs. Both files run in WAL mode with
`synchronous=NORMAL` (a committed transaction survives a killed process; only a power cut can
lose the last ones). Every read-modify-write is atomic: either one short `BEGIN IMMEDIATE`
transaction, whose writer lock is taken up front, or, for a limiter row this process wrote last,
a single compare-and-swap `UPDATE` on the row's version (`SqliteLimiterStore`). Either way two
processes can never both read a row and then both book the same room. Statements take
microseconds, so they run inline on the event loop; a statement that meets another process's
lock is retried after an asyncio sleep (`sqlite_waits.Patience`), never inside SQLite, so a held
lock never blocks the loop; past `timeout_s` the busy error is raised. Limiter, breaker and claim
rows use the monotonic time base and start afresh after a reboot (`sqlite_waits.same_boot`).
Claims on requests in flight live in `ledger.sqlite` (`sqlite_claims.py`).

Ledger writes are group-committed: every `put` made during one pass of the event loop joins one
transaction (which also ends the claims on those entries), committed on the next pass, and each
`put` returns only once that commit is done,
so an answer is durable before its caller uses it, exactly as with one commit per answer. At
200 calls in flight this turns ~20 us of commit per answer into a few; a put cancelled while
waiting is still written (the answer was paid for), and closing the backend commits what is queued.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from llm_pipeline.claude.state import circuit, gcra
from llm_pipeline.claude.state.base import (
    Booking,
)
from llm_pipeline.claude.state.circuit import Admission, BreakerPolicy, Transition
from llm_pipeline.claude.state.learned import SqliteLearnedStore
from llm_pipeline.claude.state.sqlite_claims import SqliteClaimStore
from llm_pipeline.claude.state.sqlite_ledger import (
    LEDGER_SCHEMA,
    SqliteBatchStore,
    SqliteLedgerStore,
    migrate,
)
from llm_pipeline.claude.state.sqlite_waits import Patience, immediate, same_boot

__all__ = ["SqliteBackend"]

T = TypeVar("T")

_LIMITER_COLUMNS = ", ".join(gcra.FIELDS)
_LIMITER_DECLS = ", ".join(f"{c} REAL NOT NULL" for c in gcra.FIELDS)
_LIMITS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS limiter (name TEXT PRIMARY KEY, {_LIMITER_DECLS});
CREATE TABLE IF NOT EXISTS breaker (
    name TEXT PRIMARY KEY, opened_until REAL NOT NULL, probe_until REAL NOT NULL,
    failures TEXT NOT NULL, last_error TEXT NOT NULL);
"""
_LIMITER_UPDATE = f"UPDATE limiter SET {', '.join(f'{c} = ?' for c in gcra.FIELDS)} WHERE name = ?"
_LIMITER_SWAP = _LIMITER_UPDATE + " AND version = ?"
_LIMITER_INSERT = (
    f"INSERT INTO limiter (name, {_LIMITER_COLUMNS}) VALUES (?, {', '.join('?' for _ in gcra.FIELDS)})"
)


def _connect(path: Path, schema: str, timeout_s: float = 30.0) -> sqlite3.Connection:
    """Open and set up a file, waiting up to `timeout_s` inside SQLite for a lock (nothing else runs
    yet); from then on `busy_timeout=0`, and `Patience` waits on the event loop instead."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout_s)
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(schema)
    return conn


def _ready(conn: sqlite3.Connection, transient_tables: tuple[str, ...]) -> sqlite3.Connection:
    same_boot(conn, transient_tables)
    conn.execute("PRAGMA busy_timeout=0")
    return conn


def _upgrade_limiter_table(conn: sqlite3.Connection) -> None:
    """Add the columns a `limits.sqlite` written by an older version lacks (0 = not known yet).

    Two processes may upgrade the same file at once; the loser's ALTER fails on the duplicate
    column, which is exactly the state it wanted."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(limiter)")}
    for column in gcra.FIELDS:
        if column not in present:
            try:
                conn.execute(f"ALTER TABLE limiter ADD COLUMN {column} REAL NOT NULL DEFAULT 0")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):
                    raise


class SqliteLimiterStore:
    """Limiter rows, changed by compare-and-swap on the row's version when this store wrote last.

    Every change bumps `version`. The store remembers each row as it last wrote (or read) it and
    first tries the change as one `UPDATE ... WHERE version = <remembered>`: a single statement,
    atomic on its own, that succeeds only if no other process wrote the row since, in which
    case the remembered row was the current one and the result is exactly what the locked
    read-modify-write would give. Otherwise (another process wrote, or the row is new) the
    change runs as before: `BEGIN IMMEDIATE`, read, change, write, commit. One process running
    alone thus pays one statement per booking instead of four.
    """

    def __init__(self, conn: sqlite3.Cursor, now: Callable[[], float], patience: Patience) -> None:
        self._conn, self._now, self._patience = conn, now, patience
        self._rows: dict[str, gcra.LimiterRow] = {}
        #: Changes written by compare-and-swap / by the locked read-modify-write.
        self.swapped = 0
        self.locked = 0

    def _load(self, name: str) -> gcra.LimiterRow:
        found = self._conn.execute(
            f"SELECT {_LIMITER_COLUMNS} FROM limiter WHERE name = ?", (name,)
        ).fetchone()
        return gcra.LimiterRow() if found is None else gcra.LimiterRow.from_fields(found)

    def _save(self, name: str, row: gcra.LimiterRow) -> None:
        """UPDATE in place (an INSERT OR REPLACE rewrites the row and its index entry every time)."""
        if self._conn.execute(_LIMITER_UPDATE, (*row.fields(), name)).rowcount == 0:
            self._conn.execute(_LIMITER_INSERT, (name, *row.fields()))

    def _change(self, name: str, change: Callable[..., T], *args: Any) -> tuple[T, gcra.LimiterRow]:
        """Apply `change(row, now, *args)` to the current row atomically; returns its result and the row."""
        known = self._rows.get(name)
        if known is not None:
            row = known.copy()
            result = change(row, self._now(), *args)
            if row.version == known.version:  # nothing to write (a start beyond the horizon)
                if self._load(name).version == known.version:  # and the copy was current
                    return result, row
            else:
                swapped = self._conn.execute(_LIMITER_SWAP, (*row.fields(), name, known.version))
                if swapped.rowcount == 1:
                    self._rows[name] = row
                    self.swapped += 1
                    return result, row
        with immediate(self._conn):
            row = self._load(name)
            version = row.version
            result = change(row, self._now(), *args)  # the time once the lock is ours
            if row.version != version:
                self._save(name, row)
        self._rows[name] = row
        self.locked += 1
        return result, row

    async def reserve(
        self,
        name: str,
        costs: Sequence[float],
        tolerance: float,
        horizon: float = math.inf,
        credit: Sequence[float] = (),
        intervals: Sequence[float] = (),
    ) -> Booking:
        change = self._change
        booked = await self._patience.run(
            change, name, gcra.book, costs, tolerance, horizon, credit, intervals
        )
        return booked[0]

    async def adjust(self, name: str, deltas: Sequence[float], intervals: Sequence[float] = ()) -> None:
        await self._patience.run(self._change, name, gcra.adjust, deltas, intervals)

    async def undo(
        self, name: str, booking: Booking, costs: Sequence[float], intervals: Sequence[float] = ()
    ) -> None:
        await self._patience.run(
            self._change, name, gcra.undo, booking.before, booking.version, costs, intervals
        )

    async def cool_down(
        self, name: str, seconds: float, tolerance: float, intervals: Sequence[float] = ()
    ) -> None:
        await self._patience.run(self._change, name, gcra.cool_down, seconds, tolerance, intervals)

    async def raise_floor(
        self, name: str, backlogs: Sequence[float | None], intervals: Sequence[float] = ()
    ) -> None:
        await self._patience.run(self._change, name, gcra.raise_floor, backlogs, intervals)

    async def catch_up(
        self,
        name: str,
        age: float,
        shift: float,
        backlogs: Sequence[float | None],
        marks: Sequence[float],
        limits: Sequence[float],
        intervals: Sequence[float] = (),
    ) -> tuple[float, ...]:
        given, _ = await self._patience.run(
            self._change, name, gcra.catch_up, age, shift, backlogs, marks, limits, intervals
        )
        return given

    async def peek(self, name: str) -> Booking:
        return await self._patience.run(self._peek, name)

    def _peek(self, name: str) -> Booking:
        now, row = self._now(), self._load(name)
        self._rows[name] = row
        return gcra.peek(row, now)


class SqliteBreakerStore:
    def __init__(self, conn: sqlite3.Cursor, now: Callable[[], float], patience: Patience) -> None:
        self._conn, self._now, self._patience = conn, now, patience

    def _load(self, name: str) -> circuit.BreakerRow:
        found = self._conn.execute(
            "SELECT opened_until, probe_until, failures, last_error FROM breaker WHERE name = ?", (name,)
        ).fetchone()
        if found is None:
            return circuit.BreakerRow()
        return circuit.BreakerRow(found[0], found[1], json.loads(found[2]), found[3])

    @contextmanager
    def _row(self, name: str) -> Iterator[circuit.BreakerRow]:
        with immediate(self._conn):
            row = self._load(name)
            yield row
            self._conn.execute(
                "INSERT OR REPLACE INTO breaker VALUES (?, ?, ?, ?, ?)",
                (name, row.opened_until, row.probe_until, json.dumps(row.failures), row.last_error),
            )

    def _admit(self, name: str, policy: BreakerPolicy, claim: bool) -> Admission:
        if not claim:
            return circuit.admit(self._load(name), self._now(), policy, claim=False)
        now = self._now()
        found = self._load(name)
        if found.state(now) != "half_open":
            return circuit.admit(found, now, policy, claim=True)
        with self._row(name) as row:
            return circuit.admit(row, now, policy, claim=True)

    def _failure(self, name: str, policy: BreakerPolicy, probe: bool, error: str) -> Transition | None:
        with self._row(name) as row:
            return circuit.on_failure(row, self._now(), policy, probe=probe, error=error)

    def _success(self, name: str, probe: bool) -> Transition | None:
        with self._row(name) as row:
            return circuit.on_success(row, probe=probe)

    def _release(self, name: str) -> None:
        with self._row(name) as row:
            circuit.release(row)

    def _renew(self, name: str, lease_s: float) -> None:
        with self._row(name) as row:
            circuit.renew(row, self._now(), lease_s)

    async def admit(self, name: str, policy: BreakerPolicy, *, claim: bool) -> Admission:
        return await self._patience.run(self._admit, name, policy, claim)

    async def failure(
        self, name: str, policy: BreakerPolicy, *, probe: bool, error: str
    ) -> Transition | None:
        return await self._patience.run(self._failure, name, policy, probe, error)

    async def success(self, name: str, *, probe: bool) -> Transition | None:
        return await self._patience.run(self._success, name, probe)

    async def release(self, name: str) -> None:
        await self._patience.run(self._release, name)

    async def renew(self, name: str, lease_s: float) -> None:
        await self._patience.run(self._renew, name, lease_s)


class SqliteBackend:
    """Files in one directory, opened by every process that names the same directory."""

    kind = "sqlite"
    marker = None

    def __init__(
        self,
        directory: str | Path,
        now: Callable[[], float],
        *,
        timeout_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.location = str(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        patience = Patience(timeout_s, sleep)
        self._limits = _connect(self.directory / "limits.sqlite", _LIMITS_SCHEMA, timeout_s)
        try:
            _upgrade_limiter_table(self._limits)
            self._ledger = _connect(self.directory / "ledger.sqlite", LEDGER_SCHEMA, timeout_s)
            migrate(self._ledger)
            learned = SqliteLearnedStore(self._limits.cursor(), patience)  # its table, while SQLite waits
            _ready(self._limits, ("limiter", "breaker"))
            _ready(self._ledger, ("claim",))
        except BaseException:
            self._limits.close()
            raise
        # One cursor per store, reused: `Connection.execute` makes a new cursor object for every
        # statement, and a call runs four of them; the stores never interleave two statements.
        self.limiter = SqliteLimiterStore(self._limits.cursor(), now, patience)
        self.breaker = SqliteBreakerStore(self._limits.cursor(), now, patience)
        self.claims = SqliteClaimStore(self._ledger.cursor(), now, patience)
        self.ledger = SqliteLedgerStore(self._ledger.cursor(), patience)
        self.batches = SqliteBatchStore(self._ledger, patience)
        self.learned = learned

    async def verify(self) -> None:
        """Nothing to do: opening the files already proved they can be read and written."""

    async def aclose(self) -> None:
        try:
            await self.ledger.flush()
        finally:
            self._limits.close()
            self._ledger.close()
