"""Waiting for a locked SQLite file without blocking the event loop, and noticing a reboot.

SQLite's own `busy_timeout` sleeps inside the C call, which holds the event loop (every other call
of the process) for as long as another process keeps the lock: a 30 s lock froze a step for 30 s.
So the connections run with `busy_timeout=0`, and `Patience.run` retries a statement that met
SQLITE_BUSY after an `asyncio` sleep (1 ms, doubling to 50 ms), until `timeout_s` has passed;
then the busy error is raised, and names how long it waited. Uncontended statements pay nothing.

The limiter, breaker and claim rows are kept in the monotonic time base (`clock.py`), which
restarts at boot: rows written before a reboot would read as minutes or days in the future. A
`meta` row records the boot they were written in (Linux `boot_id`; elsewhere the boot instant
rounded to a minute), and `same_boot` lets a backend start those transient rows afresh when it
changed. Ledger answers are never reset: their timestamps are wall-clock.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Patience", "boot_id", "immediate", "is_busy", "same_boot"]

T = TypeVar("T")

_FIRST_WAIT_S = 0.001
_MAX_WAIT_S = 0.05
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_META_SCHEMA = "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"


@contextmanager
def immediate(conn: sqlite3.Cursor) -> Iterator[sqlite3.Cursor]:
    """One `BEGIN IMMEDIATE` transaction (the writer lock taken up front), rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def is_busy(error: sqlite3.Error) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds a lock we need; waiting may help."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


class Patience:
    """Retries a synchronous SQLite operation that met a lock, sleeping on the loop in between."""

    __slots__ = ("_sleep", "timeout_s")

    def __init__(self, timeout_s: float, sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.timeout_s = timeout_s
        self._sleep = sleep or asyncio.sleep

    async def run(self, operation: Callable[..., T], *args: Any) -> T:
        waited, delay = 0.0, _FIRST_WAIT_S
        while True:
            try:
                return operation(*args)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                if waited >= self.timeout_s:
                    raise sqlite3.OperationalError(f"{exc} (still locked after {waited:.1f} s)") from exc
            await self._sleep(delay)
            waited += delay
            delay = min(2 * delay, _MAX_WAIT_S)


def boot_id() -> str:
    """Which boot of this machine the monotonic clock counts from."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return f"boot-at-{round((time.time() - time.monotonic()) / 60)}"


def same_boot(conn: sqlite3.Connection, transient_tables: tuple[str, ...]) -> bool:
    """Record this boot in `meta`; on a different (or unknown) one, empty `transient_tables` first.

    Runs once when a backend opens the file, in one `BEGIN IMMEDIATE` transaction, so concurrent
    openers agree. Returns whether the rows were kept.
    """
    conn.execute(_META_SCHEMA)
    current = boot_id()
    found = conn.execute("SELECT value FROM meta WHERE name = 'boot'").fetchone()
    if found is not None and found[0] == current:
        return True
    with immediate(conn.cursor()) as cursor:
        found = cursor.execute("SELECT value FROM meta WHERE name = 'boot'").fetchone()
        kept = found is not None and found[0] == current
        if not kept:
            for table in transient_tables:
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute("INSERT OR REPLACE INTO meta VALUES ('boot', ?)", (current,))
    return kept
