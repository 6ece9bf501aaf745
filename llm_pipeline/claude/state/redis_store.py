"""Redis state (`settings.state = "redis://..."`): shared by every process on every machine.

Limiter and breaker changes run as Lua scripts (`redis_lua.py`), which Redis executes atomically
and which read the Redis server's `TIME`, so machines with skewed clocks still agree on when a
bucket refills. Callers only see relative seconds. Ledger entries are hashes, indexed by a
sorted set on `created_at` for `stats` and `prune`. A pending batch is one hash (its items as one
JSON value), listed in a sorted set per namespace; both are written in one MULTI transaction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import redis.asyncio as aioredis

from llm_pipeline.claude.state.base import (
    Booking,
    LedgerEntry,
    LedgerStats,
    PendingBatch,
    decode_items,
    encode_items,
)
from llm_pipeline.claude.state.circuit import Admission, BreakerPolicy, Transition
from llm_pipeline.claude.state.gcra import FIELDS
from llm_pipeline.claude.state.learned import RedisLearnedStore
from llm_pipeline.claude.state.redis_lua import BREAKER_LUA, LIMITER_LUA

__all__ = ["RedisBackend"]

PREFIX = "llm_pipeline:"
#: Connections per stack; Lua calls take ~100 us, so a few dozen serve thousands of calls/s.
MAX_CONNECTIONS = 64
#: How long a caller waits for a free connection before the pool gives up.
POOL_WAIT_S = 60.0
_LEDGER_FIELDS = ("key", "model", "message", "input_tokens", "output_tokens", "created_at")
_CHUNK = 500
_NO_CREDIT = (0.0, 0.0, 0.0)


def _num(x: float) -> str:
    return repr(float(x))


class RedisLimiterStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._script = client.register_script(LIMITER_LUA)

    async def _run(self, name: str, *args: object) -> list[str]:
        reply = await self._script(keys=[f"{PREFIX}limiter:{name}"], args=list(args))
        return [str(x) for x in reply]

    async def reserve(
        self,
        name: str,
        costs: Sequence[float],
        tolerance: float,
        horizon: float = math.inf,
        credit: Sequence[float] = (),
        intervals: Sequence[float] = (),
    ) -> Booking:
        limit = "inf" if math.isinf(horizon) else _num(horizon)
        if intervals and not credit:
            credit = _NO_CREDIT  # the Lua script reads the intervals after the three credit values
        reply = await self._run(
            name,
            "reserve",
            *map(_num, costs),
            _num(tolerance),
            limit,
            *map(_num, credit),
            *map(_num, intervals),
        )
        values = [float(x) for x in reply]
        n = len(FIELDS)
        return Booking(
            values[0],
            tuple(values[1:4]),
            tuple(values[4 : 4 + n]),
            values[4 + n],
            values[5 + n],
            bool(values[6 + n]),
        )

    async def adjust(self, name: str, deltas: Sequence[float], intervals: Sequence[float] = ()) -> None:
        await self._run(name, "adjust", *map(_num, deltas), *map(_num, intervals))

    async def undo(
        self, name: str, booking: Booking, costs: Sequence[float], intervals: Sequence[float] = ()
    ) -> None:
        await self._run(
            name,
            "undo",
            _num(booking.version),
            *map(_num, booking.before),
            *map(_num, costs),
            *map(_num, intervals),
        )

    async def cool_down(
        self, name: str, seconds: float, tolerance: float, intervals: Sequence[float] = ()
    ) -> None:
        await self._run(name, "cool_down", _num(seconds), _num(tolerance), *map(_num, intervals))

    async def raise_floor(
        self, name: str, backlogs: Sequence[float | None], intervals: Sequence[float] = ()
    ) -> None:
        floors = ("-" if b is None else _num(b) for b in backlogs)
        await self._run(name, "raise_floor", *floors, *map(_num, intervals))

    async def peek(self, name: str) -> Booking:
        values = [float(x) for x in await self._run(name, "peek")]
        return Booking(values[0], tuple(values[1:4]), shift=values[4])


class RedisBreakerStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._script = client.register_script(BREAKER_LUA)

    async def _run(self, name: str, *args: object) -> object:
        return await self._script(keys=[f"{PREFIX}breaker:{name}"], args=list(args))

    async def admit(self, name: str, policy: BreakerPolicy, *, claim: bool) -> Admission:
        verdict, state, last_error, retry_in, failures = await self._run(  # type: ignore[misc]
            name, "admit", "1" if claim else "0", _num(policy.probe_ttl_s)
        )
        return Admission(verdict, state, last_error, float(retry_in), int(failures))

    async def failure(
        self, name: str, policy: BreakerPolicy, *, probe: bool, error: str
    ) -> Transition | None:
        reply = await self._run(
            name,
            "failure",
            "1" if probe else "0",
            error,
            str(policy.threshold),
            _num(policy.window_s),
            _num(policy.open_s),
        )
        return reply or None  # type: ignore[return-value]

    async def success(self, name: str, *, probe: bool) -> Transition | None:
        return (await self._run(name, "success", "1" if probe else "0")) or None  # type: ignore[return-value]

    async def release(self, name: str) -> None:
        await self._run(name, "release")


class RedisLedgerStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._index = f"{PREFIX}ledger:index"

    def _key(self, fingerprint: str) -> str:
        return f"{PREFIX}ledger:{fingerprint}"

    async def get(self, fingerprints: Sequence[str]) -> LedgerEntry | None:
        for fingerprint in fingerprints:
            found = await self._client.hmget(self._key(fingerprint), _LEDGER_FIELDS)  # type: ignore[misc]
            if found[0] is not None:
                key, model, message, tokens_in, tokens_out, created = found
                return LedgerEntry(
                    fingerprint, key, model, message, int(tokens_in), int(tokens_out), float(created)
                )
        return None

    async def put(self, entry: LedgerEntry) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key(entry.fingerprint),
                mapping={
                    "key": entry.key,
                    "model": entry.model,
                    "message": entry.message_json,
                    "input_tokens": entry.input_tokens,
                    "output_tokens": entry.output_tokens,
                    "created_at": _num(entry.created_at),
                },
            )
            pipe.zadd(self._index, {entry.fingerprint: entry.created_at})
            await pipe.execute()

    async def stats(self) -> LedgerStats:
        members = await self._client.zrange(self._index, 0, -1, withscores=True)
        tokens_in = tokens_out = 0
        for i in range(0, len(members), _CHUNK):
            async with self._client.pipeline(transaction=False) as pipe:
                for fingerprint, _ in members[i : i + _CHUNK]:
                    pipe.hmget(self._key(fingerprint), ["input_tokens", "output_tokens"])
                for pair in await pipe.execute():
                    tokens_in += int(pair[0] or 0)
                    tokens_out += int(pair[1] or 0)
        scores = [score for _, score in members]
        return LedgerStats(
            len(members), min(scores, default=None), max(scores, default=None), tokens_in, tokens_out
        )

    async def prune(self, before: float) -> int:
        old = await self._client.zrangebyscore(self._index, "-inf", f"({_num(before)}")
        for i in range(0, len(old), _CHUNK):
            chunk = old[i : i + _CHUNK]
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(*(self._key(f) for f in chunk))
                pipe.zrem(self._index, *chunk)
                await pipe.execute()
        return len(old)


class RedisBatchStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    def _key(self, batch_id: str) -> str:
        return f"{PREFIX}batch:{batch_id}"

    def _index(self, namespace: str) -> str:
        return f"{PREFIX}batches:{namespace}"

    async def record(self, batch: PendingBatch) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key(batch.batch_id),
                mapping={
                    "namespace": batch.namespace,
                    "created_at": _num(batch.created_at),
                    "items": encode_items(batch.items),
                },
            )
            pipe.zadd(self._index(batch.namespace), {batch.batch_id: batch.created_at})
            await pipe.execute()

    async def pending(self, namespace: str) -> list[PendingBatch]:
        found = []
        for batch_id in await self._client.zrange(self._index(namespace), 0, -1):
            created, items = await self._client.hmget(self._key(batch_id), ["created_at", "items"])  # type: ignore[misc]
            if items is not None:
                found.append(PendingBatch(batch_id, namespace, float(created), decode_items(items)))
        return found

    async def finish(self, batch_id: str) -> None:
        namespace = await self._client.hget(self._key(batch_id), "namespace")  # type: ignore[misc]
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(batch_id))
            if namespace is not None:
                pipe.zrem(self._index(namespace), batch_id)
            await pipe.execute()


class RedisBackend:
    """One connection pool to the Redis named by the URL; closed with the stack."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        self.url = url
        # A blocking pool: with more callers than connections they queue for one. The default
        # pool raised MaxConnectionsError past 100 concurrent calls (found at 200 in flight by
        # the benchmarks, scenario 4).
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S
        )
        self._client = aioredis.Redis.from_pool(pool)
        self.limiter = RedisLimiterStore(self._client)
        self.breaker = RedisBreakerStore(self._client)
        self.ledger = RedisLedgerStore(self._client)
        self.batches = RedisBatchStore(self._client)
        self.learned = RedisLearnedStore(self._client)

    async def aclose(self) -> None:
        await self._client.aclose()
