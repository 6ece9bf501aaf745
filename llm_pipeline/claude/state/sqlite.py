"""SQLite state (`settings.state` = a directory): shared by every process on one machine.

Limiter and breaker rows live in `limits.sqlite`, the ledger (and the pending batches of batch
mode) in `ledger.sqlite`, so large ledger
writes never hold the lock the hot limiter path needs. Both files run in WAL mode with
`synchronous=NORMAL` (a committed transaction survives a killed process; only a power cut can
lose the last ones). Every read-modify-write is one short `BEGIN IMMEDIATE` transaction: the
writer lock is taken up front, so two processes can never both read a row and then both book
the same room. Transactions take tens of microseconds, so they run inline on the event loop;
`busy_timeout` makes a process wait (not fail) while another holds the lock.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from llm_pipeline.claude.state import circuit, gcra
from llm_pipeline.claude.state.base import (
    Booking,
    LedgerEntry,
    LedgerStats,
    PendingBatch,
    decode_items,
    encode_items,
)
from llm_pipeline.claude.state.circuit import Admission, BreakerPolicy, Transition

__all__ = ["SqliteBackend"]

_LIMITER_COLUMNS = ", ".join(gcra.FIELDS)
_LIMITER_DECLS = ", ".join(f"{c} REAL NOT NULL" for c in gcra.FIELDS)
_LIMITS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS limiter (name TEXT PRIMARY KEY, {_LIMITER_DECLS});
CREATE TABLE IF NOT EXISTS breaker (
    name TEXT PRIMARY KEY, opened_until REAL NOT NULL, probe_until REAL NOT NULL,
    failures TEXT NOT NULL, last_error TEXT NOT NULL);
"""
_LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    fingerprint TEXT PRIMARY KEY, key TEXT NOT NULL, model TEXT NOT NULL, message TEXT NOT NULL,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_created_at ON ledger (created_at);
CREATE TABLE IF NOT EXISTS batch (
    batch_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, created_at REAL NOT NULL, items TEXT NOT NULL);
"""


def _connect(path: Path, schema: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.executescript(schema)
    return conn


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqliteLimiterStore:
    def __init__(self, conn: sqlite3.Connection, now: Callable[[], float]) -> None:
        self._conn, self._now = conn, now

    def _load(self, name: str) -> gcra.LimiterRow:
        found = self._conn.execute(
            f"SELECT {_LIMITER_COLUMNS} FROM limiter WHERE name = ?", (name,)
        ).fetchone()
        return gcra.LimiterRow() if found is None else gcra.LimiterRow.from_fields(found)

    def _save(self, name: str, row: gcra.LimiterRow) -> None:
        marks = ", ".join("?" for _ in gcra.FIELDS)
        self._conn.execute(
            f"INSERT OR REPLACE INTO limiter (name, {_LIMITER_COLUMNS}) VALUES (?, {marks})",
            (name, *row.fields()),
        )

    @contextmanager
    def _row(self, name: str) -> Iterator[gcra.LimiterRow]:
        with _immediate(self._conn):
            row = self._load(name)
            yield row
            self._save(name, row)

    async def reserve(
        self, name: str, costs: Sequence[float], tolerance: float, horizon: float = math.inf
    ) -> Booking:
        now = self._now()
        with self._row(name) as row:
            before = row.fields()
            start, booked = gcra.reserve(row, now, costs, tolerance, horizon)
        return Booking(start - now, row.backlogs(now), before, row.version, row.shift, booked)

    async def adjust(self, name: str, deltas: Sequence[float]) -> None:
        with self._row(name) as row:
            gcra.adjust(row, self._now(), deltas)

    async def undo(self, name: str, booking: Booking, costs: Sequence[float]) -> None:
        with self._row(name) as row:
            gcra.undo(row, self._now(), booking.before, booking.version, costs)

    async def cool_down(self, name: str, seconds: float, tolerance: float) -> None:
        with self._row(name) as row:
            gcra.cool_down(row, self._now(), seconds, tolerance)

    async def raise_floor(self, name: str, backlogs: Sequence[float | None]) -> None:
        with self._row(name) as row:
            gcra.raise_floor(row, self._now(), backlogs)

    async def peek(self, name: str) -> Booking:
        now, row = self._now(), self._load(name)
        return Booking(max(0.0, row.paused_until - now), row.backlogs(now), shift=row.shift)


class SqliteBreakerStore:
    def __init__(self, conn: sqlite3.Connection, now: Callable[[], float]) -> None:
        self._conn, self._now = conn, now

    def _load(self, name: str) -> circuit.BreakerRow:
        found = self._conn.execute(
            "SELECT opened_until, probe_until, failures, last_error FROM breaker WHERE name = ?", (name,)
        ).fetchone()
        if found is None:
            return circuit.BreakerRow()
        return circuit.BreakerRow(found[0], found[1], json.loads(found[2]), found[3])

    @contextmanager
    def _row(self, name: str) -> Iterator[circuit.BreakerRow]:
        with _immediate(self._conn):
            row = self._load(name)
            yield row
            self._conn.execute(
                "INSERT OR REPLACE INTO breaker VALUES (?, ?, ?, ?, ?)",
                (name, row.opened_until, row.probe_until, json.dumps(row.failures), row.last_error),
            )

    async def admit(self, name: str, policy: BreakerPolicy, *, claim: bool) -> Admission:
        if not claim:
            return circuit.admit(self._load(name), self._now(), policy, claim=False)
        now = self._now()
        found = self._load(name)
        if found.state(now) != "half_open":
            return circuit.admit(found, now, policy, claim=True)
        with self._row(name) as row:
            return circuit.admit(row, now, policy, claim=True)

    async def failure(
        self, name: str, policy: BreakerPolicy, *, probe: bool, error: str
    ) -> Transition | None:
        with self._row(name) as row:
            return circuit.on_failure(row, self._now(), policy, probe=probe, error=error)

    async def success(self, name: str, *, probe: bool) -> Transition | None:
        with self._row(name) as row:
            return circuit.on_success(row, probe=probe)

    async def release(self, name: str) -> None:
        with self._row(name) as row:
            circuit.release(row)


class SqliteLedgerStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def get(self, fingerprints: Sequence[str]) -> LedgerEntry | None:
        for fingerprint in fingerprints:
            found = self._conn.execute(
                "SELECT fingerprint, key, model, message, input_tokens, output_tokens, created_at "
                "FROM ledger WHERE fingerprint = ?",
                (fingerprint,),
            ).fetchone()
            if found is not None:
                return LedgerEntry(*found)
        return None

    async def put(self, entry: LedgerEntry) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entry.fingerprint,
                entry.key,
                entry.model,
                entry.message_json,
                entry.input_tokens,
                entry.output_tokens,
                entry.created_at,
            ),
        )

    async def stats(self) -> LedgerStats:
        n, oldest, newest, tokens_in, tokens_out = self._conn.execute(
            "SELECT count(*), min(created_at), max(created_at), "
            "coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0) FROM ledger"
        ).fetchone()
        return LedgerStats(n, oldest, newest, tokens_in, tokens_out)

    async def prune(self, before: float) -> int:
        return self._conn.execute("DELETE FROM ledger WHERE created_at < ?", (before,)).rowcount


class SqliteBatchStore:
    """Pending batches next to the ledger (`ledger.sqlite`), each one row written in one statement."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def record(self, batch: PendingBatch) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO batch VALUES (?, ?, ?, ?)",
            (batch.batch_id, batch.namespace, batch.created_at, encode_items(batch.items)),
        )

    async def pending(self, namespace: str) -> list[PendingBatch]:
        rows = self._conn.execute(
            "SELECT batch_id, namespace, created_at, items FROM batch WHERE namespace = ? "
            "ORDER BY created_at, batch_id",
            (namespace,),
        ).fetchall()
        return [PendingBatch(b, ns, created, decode_items(items)) for b, ns, created, items in rows]

    async def finish(self, batch_id: str) -> None:
        self._conn.execute("DELETE FROM batch WHERE batch_id = ?", (batch_id,))


class SqliteBackend:
    """Files in one directory, opened by every process that names the same directory."""

    kind = "sqlite"

    def __init__(self, directory: str | Path, now: Callable[[], float]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._limits = _connect(self.directory / "limits.sqlite", _LIMITS_SCHEMA)
        self._ledger = _connect(self.directory / "ledger.sqlite", _LEDGER_SCHEMA)
        self.limiter = SqliteLimiterStore(self._limits, now)
        self.breaker = SqliteBreakerStore(self._limits, now)
        self.ledger = SqliteLedgerStore(self._ledger)
        self.batches = SqliteBatchStore(self._ledger)

    async def aclose(self) -> None:
        self._limits.close()
        self._ledger.close()
