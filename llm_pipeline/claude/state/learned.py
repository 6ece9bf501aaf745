"""Learned rate limits in each state backend: one small record per endpoint and model.

Written only when what the headers say changes (and, to keep `seen_at` meaningful, at most once a
minute otherwise), read when a process first paces a model: far off the hot path, so plain
statements suffice (in SQLite waiting out another process's lock on the loop, like every other
statement, see `sqlite_waits.Patience`). The last writer wins; every value written is one a server
just reported.
"""

from __future__ import annotations

import sqlite3

import redis.asyncio as aioredis

from llm_pipeline.claude.state.base import LearnedLimits
from llm_pipeline.claude.state.redis_keys import PREFIX
from llm_pipeline.claude.state.sqlite_waits import Patience

__all__ = ["MemoryLearnedStore", "RedisLearnedStore", "SqliteLearnedStore"]

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS learned_limits (
    name TEXT PRIMARY KEY, rpm REAL, itpm REAL, otpm REAL, burst_s REAL,
    seen_at REAL NOT NULL, changed_at REAL NOT NULL)
"""
_COLUMNS = ("name", "rpm", "itpm", "otpm", "burst_s", "seen_at", "changed_at")
_VALUES = _COLUMNS[1:]
_PREFIX = f"{PREFIX}learned"


def _row(record: LearnedLimits) -> tuple[object, ...]:
    return tuple(getattr(record, column) for column in _COLUMNS)


class MemoryLearnedStore:
    def __init__(self) -> None:
        self._records: dict[str, LearnedLimits] = {}

    async def get(self, name: str) -> LearnedLimits | None:
        return self._records.get(name)

    async def put(self, record: LearnedLimits) -> None:
        self._records[record.name] = record

    async def all(self) -> list[LearnedLimits]:
        return sorted(self._records.values(), key=lambda r: r.name)


class SqliteLearnedStore:
    """A table beside the limiter rows in `limits.sqlite`."""

    def __init__(self, conn: sqlite3.Cursor, patience: Patience) -> None:
        self._conn, self._patience = conn, patience
        conn.execute(_SQLITE_SCHEMA)

    async def get(self, name: str) -> LearnedLimits | None:
        found = await self._patience.run(self._select, "WHERE name = ?", (name,))
        return found[0] if found else None

    async def put(self, record: LearnedLimits) -> None:
        await self._patience.run(
            self._conn.execute,
            f"INSERT OR REPLACE INTO learned_limits VALUES ({', '.join('?' for _ in _COLUMNS)})",
            _row(record),
        )

    async def all(self) -> list[LearnedLimits]:
        return await self._patience.run(self._select, "ORDER BY name", ())

    def _select(self, clause: str, args: tuple[object, ...]) -> list[LearnedLimits]:
        rows = self._conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM learned_limits {clause}", args)
        return [LearnedLimits(*row) for row in rows.fetchall()]


def _number(raw: str | None) -> float | None:
    return None if raw is None or raw == "" else float(raw)


class RedisLearnedStore:
    """A hash per record (`llm_pipeline:learned:<name>`), listed in the set `llm_pipeline:learned`."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def get(self, name: str) -> LearnedLimits | None:
        values = await self._client.hmget(f"{_PREFIX}:{name}", _VALUES)  # type: ignore[misc]
        if values[-1] is None:
            return None
        rpm, itpm, otpm, burst = (_number(v) for v in values[:4])
        return LearnedLimits(name, rpm, itpm, otpm, burst, float(values[4]), float(values[5]))

    async def put(self, record: LearnedLimits) -> None:
        mapping = {
            column: "" if value is None else repr(float(value))
            for column, value in zip(_VALUES, _row(record)[1:], strict=True)
        }
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(f"{_PREFIX}:{record.name}", mapping=mapping)
            pipe.sadd(_PREFIX, record.name)
            await pipe.execute()

    async def all(self) -> list[LearnedLimits]:
        names = sorted(await self._client.smembers(_PREFIX))  # type: ignore[misc]
        found = [await self.get(name) for name in names]
        return [record for record in found if record is not None]
