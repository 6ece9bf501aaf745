"""The ledger and the pending batches in SQLite (`ledger.sqlite`); see `sqlite.py` for the files.

Ledger writes are group-committed: every `put` made during one pass of the event loop joins one
transaction (which also ends the claims on those entries), committed on the next pass, and each
`put` returns only once that commit is done, so an answer is durable before its caller uses it,
exactly as with one commit per answer. At 200 calls in flight this turns ~20 us of commit per
answer into a few; a put cancelled while waiting is still written (the answer was paid for), and
closing the backend commits what is queued. A lock held by another process puts the batch back
and tries again shortly, on the loop (`sqlite_waits.py`), until the backend's timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence

from llm_pipeline.claude.state.base import (
    LedgerEntry,
    LedgerSelection,
    LedgerStats,
    PendingBatch,
    decode_items,
    encode_items,
)
from llm_pipeline.claude.state.sqlite_claims import CLAIM_SCHEMA
from llm_pipeline.claude.state.sqlite_waits import Patience, immediate, is_busy

__all__ = ["LEDGER_SCHEMA", "SqliteBatchStore", "SqliteLedgerStore", "migrate"]

LEDGER_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS ledger (
    fingerprint TEXT PRIMARY KEY, key TEXT NOT NULL, model TEXT NOT NULL, message TEXT NOT NULL,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, created_at REAL NOT NULL,
    step TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS ledger_created_at ON ledger (created_at);
CREATE TABLE IF NOT EXISTS batch (
    batch_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, created_at REAL NOT NULL, items TEXT NOT NULL);
"""
    + CLAIM_SCHEMA
)
LEDGER_COLUMNS = "fingerprint, key, model, message, input_tokens, output_tokens, created_at, step"
_LEDGER_INSERT = f"INSERT OR REPLACE INTO ledger ({LEDGER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_FIRST_COMMIT_WAIT_S = 0.001
_MAX_COMMIT_WAIT_S = 0.05


def migrate(conn: sqlite3.Connection) -> None:
    """A ledger written before entries recorded their step gets the column (empty) on first open."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(ledger)")}
    if "step" not in columns:
        conn.execute("ALTER TABLE ledger ADD COLUMN step TEXT NOT NULL DEFAULT ''")


_Batch = list[tuple[LedgerEntry, "asyncio.Future[None]"]]


def _row(e: LedgerEntry) -> tuple[object, ...]:
    return (
        e.fingerprint,
        e.key,
        e.model,
        e.message_json,
        e.input_tokens,
        e.output_tokens,
        e.created_at,
        e.step,
    )


class SqliteLedgerStore:
    def __init__(self, conn: sqlite3.Cursor, patience: Patience) -> None:
        self._conn = conn
        self._patience = patience
        self._queue: list[tuple[LedgerEntry, asyncio.Future[None]]] = []
        #: When the queued batch first met a lock (loop time), and the wait before the next try.
        self._busy_since: float | None = None
        self._busy_wait = _FIRST_COMMIT_WAIT_S
        #: Transactions that wrote entries (fewer than entries: that is the group commit).
        self.commits = 0

    def _get(self, fingerprints: Sequence[str]) -> LedgerEntry | None:
        for fingerprint in fingerprints:
            found = self._conn.execute(
                f"SELECT {LEDGER_COLUMNS} FROM ledger WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
            if found is not None:
                return LedgerEntry(*found)
        return None

    async def get(self, fingerprints: Sequence[str]) -> LedgerEntry | None:
        return await self._patience.run(self._get, fingerprints)

    async def put(self, entry: LedgerEntry) -> None:
        """Queue the entry for the next group commit and return once it is committed."""
        loop = asyncio.get_running_loop()
        committed = loop.create_future()
        self._queue.append((entry, committed))
        if len(self._queue) == 1:
            loop.call_soon(self.commit)
        await committed

    def commit(self) -> None:
        """Write every queued entry in one transaction, then wake their writers (or fail them).

        A lock held by another process puts the batch back and tries again a little later (on
        the loop, not inside SQLite), until the patience's timeout; then the writers get the error.
        """
        batch, self._queue = self._queue, []
        if not batch:
            return
        try:
            self._write_all([e for e, _ in batch])
        except sqlite3.Error as exc:
            outcome = self._retry_later(batch, exc)
            if outcome is not None:
                self._settle(batch, outcome)
            return
        self.commits += 1
        self._busy_since, self._busy_wait = None, _FIRST_COMMIT_WAIT_S
        self._settle(batch, None)

    def _retry_later(self, batch: _Batch, error: sqlite3.Error) -> sqlite3.Error | None:
        """Requeue the batch for a later try (None), or the error to fail its writers with."""
        if not (isinstance(error, sqlite3.OperationalError) and is_busy(error)):
            return error
        loop = asyncio.get_running_loop()
        self._busy_since = self._busy_since if self._busy_since is not None else loop.time()
        waited = loop.time() - self._busy_since
        if waited >= self._patience.timeout_s:
            self._busy_since, self._busy_wait = None, _FIRST_COMMIT_WAIT_S
            return sqlite3.OperationalError(f"{error} (still locked after {waited:.1f} s)")
        self._queue = batch + self._queue
        loop.call_later(self._busy_wait, self.commit)
        self._busy_wait = min(2 * self._busy_wait, _MAX_COMMIT_WAIT_S)
        return None

    @staticmethod
    def _settle(batch: _Batch, error: BaseException | None) -> None:
        for _, waiter in batch:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    async def flush(self) -> None:
        """Commit what is queued now (closing): wait for a lock like any statement, then give up."""
        batch, self._queue = self._queue, []
        if batch:
            try:
                await self._patience.run(self._write_all, [e for e, _ in batch])
            except sqlite3.Error as exc:
                self._settle(batch, exc)
                raise
            self._settle(batch, None)

    def _write_all(self, entries: list[LedgerEntry]) -> None:
        with immediate(self._conn):
            self._conn.executemany(_LEDGER_INSERT, [_row(e) for e in entries])
            self._conn.executemany("DELETE FROM claim WHERE key = ?", [(e.fingerprint,) for e in entries])

    def _stats(self) -> LedgerStats:
        n, oldest, newest, tokens_in, tokens_out = self._conn.execute(
            "SELECT count(*), min(created_at), max(created_at), "
            "coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0) FROM ledger"
        ).fetchone()
        return LedgerStats(n, oldest, newest, tokens_in, tokens_out)

    async def stats(self) -> LedgerStats:
        return await self._patience.run(self._stats)

    def _prune(self, before: float) -> int:
        return self._conn.execute("DELETE FROM ledger WHERE created_at < ?", (before,)).rowcount

    async def prune(self, before: float) -> int:
        return await self._patience.run(self._prune, before)

    def _delete(self, selection: LedgerSelection) -> int:
        clauses: list[str] = []
        values: list[str] = []
        for column, wanted in (
            ("fingerprint", selection.fingerprints),
            ("key", selection.keys),
            ("model", selection.models),
            ("step", selection.steps),
        ):
            if wanted:
                clauses.append(f"{column} IN ({', '.join('?' for _ in wanted)})")
                values += wanted
        if selection.fingerprints:  # a bare fingerprint matches its `<endpoint>:` entry too
            marks = ", ".join("?" for _ in selection.fingerprints)
            clauses.append(f"substr(fingerprint, instr(fingerprint, ':') + 1) IN ({marks})")
            values += selection.fingerprints
        if not clauses:
            return 0
        return self._conn.execute(f"DELETE FROM ledger WHERE {' OR '.join(clauses)}", values).rowcount

    async def delete(self, selection: LedgerSelection) -> int:
        return await self._patience.run(self._delete, selection)


class SqliteBatchStore:
    """Pending batches next to the ledger (`ledger.sqlite`), each one row written in one statement."""

    def __init__(self, conn: sqlite3.Connection, patience: Patience) -> None:
        self._conn = conn
        self._patience = patience

    def _record(self, batch: PendingBatch) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO batch VALUES (?, ?, ?, ?)",
            (batch.batch_id, batch.namespace, batch.created_at, encode_items(batch.items)),
        )

    async def record(self, batch: PendingBatch) -> None:
        await self._patience.run(self._record, batch)

    def _pending(self, namespace: str) -> list[PendingBatch]:
        rows = self._conn.execute(
            "SELECT batch_id, namespace, created_at, items FROM batch WHERE namespace = ? "
            "ORDER BY created_at, batch_id",
            (namespace,),
        ).fetchall()
        return [PendingBatch(b, ns, created, decode_items(items)) for b, ns, created, items in rows]

    async def pending(self, namespace: str) -> list[PendingBatch]:
        return await self._patience.run(self._pending, namespace)

    def _finish(self, batch_id: str) -> None:
        self._conn.execute("DELETE FROM batch WHERE batch_id = ?", (batch_id,))

    async def finish(self, batch_id: str) -> None:
        await self._patience.run(self._finish, batch_id)
