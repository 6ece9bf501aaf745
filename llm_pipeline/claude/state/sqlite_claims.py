"""Claims on requests in flight, in `ledger.sqlite` next to the answers they wait for.

One row per claimed ledger entry: its owner and the end of its lease (monotonic time base). Taking
a claim is a single upsert that only overwrites a lapsed claim or the owner's own, so two
processes can never both hold one; the ledger's group commit deletes the claims of the answers it
writes, in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from llm_pipeline.claude.state.sqlite_waits import Patience

__all__ = ["CLAIM_SCHEMA", "SqliteClaimStore"]

CLAIM_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS claim (key TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL);"
)
#: One statement: no claim on an answered entry (unless asked), and none over a live foreign claim.
_CLAIM = (
    "INSERT INTO claim SELECT ?, ?, ? WHERE ? OR NOT EXISTS (SELECT 1 FROM ledger WHERE fingerprint = ?) "
    "ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, until = excluded.until "
    "WHERE claim.until <= ? OR claim.owner = excluded.owner"
)
_CHUNK = 500


class SqliteClaimStore:
    def __init__(self, conn: sqlite3.Cursor, now: Callable[[], float], patience: Patience) -> None:
        self._conn, self._now, self._patience = conn, now, patience

    def _claim(self, key: str, owner: str, lease_s: float, answered_too: bool) -> bool:
        now = self._now()
        values = (key, owner, now + lease_s, answered_too, key, now)
        return self._conn.execute(_CLAIM, values).rowcount == 1

    def _renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None:
        until = self._now() + lease_s
        for i in range(0, len(keys), _CHUNK):
            chunk = list(keys[i : i + _CHUNK])
            marks = ", ".join("?" for _ in chunk)
            self._conn.execute(
                f"UPDATE claim SET until = ? WHERE owner = ? AND key IN ({marks})", (until, owner, *chunk)
            )

    def _release(self, key: str, owner: str) -> None:
        self._conn.execute("DELETE FROM claim WHERE key = ? AND owner = ?", (key, owner))

    async def claim(self, key: str, owner: str, lease_s: float, *, answered_too: bool = False) -> bool:
        return await self._patience.run(self._claim, key, owner, lease_s, answered_too)

    async def renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None:
        if keys:
            await self._patience.run(self._renew, keys, owner, lease_s)

    async def release(self, key: str, owner: str) -> None:
        await self._patience.run(self._release, key, owner)
