"""Redis state (`settings.state = "redis://..."`): shared by every process on every machine.

Limiter and breaker changes run as Lua scripts (`redis_lua.py`), which Redis executes atomically
and which read the Redis server's `TIME`, so machines with skewed clocks still agree on when a
bucket refills. Callers only see relative seconds. The ledger and the claims on requests in flight
live in `redis_ledger.py`. A pending batch is one hash (its items as one JSON value), listed in a
sorted set per namespace; both are written in one MULTI transaction.

Every operation waits at most `timeout_s` for the server (a frozen or unreachable Redis must fail
the step, not hang it); a connection the server dropped is reconnected once. `verify` pings the
server before any call and writes a marker key if there is none: the marker is how a Redis that
restarted empty (and so forgot every answer) is recognised, at start against the marker this
machine saw last (`claude/spool.py`), and mid-run by every ledger write, which checks it
in the same transaction.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from llm_pipeline.claude.state.base import (
    Booking,
    PendingBatch,
    decode_items,
    encode_items,
)
from llm_pipeline.claude.state.circuit import Admission, BreakerPolicy, Transition
from llm_pipeline.claude.state.gcra import FIELDS
from llm_pipeline.claude.state.learned import RedisLearnedStore
from llm_pipeline.claude.state.redact import redact
from llm_pipeline.claude.state.redis_keys import MARKER, PREFIX
from llm_pipeline.claude.state.redis_keys import num as _num
from llm_pipeline.claude.state.redis_ledger import RedisClaimStore, RedisLedgerStore
from llm_pipeline.claude.state.redis_lua import BREAKER_LUA, LIMITER_LUA

__all__ = ["RedisBackend"]

#: Connections per stack; Lua calls take ~100 us, so a few dozen serve thousands of calls/s.
MAX_CONNECTIONS = 64
#: How long a caller waits for a free connection before the pool gives up.
POOL_WAIT_S = 60.0
#: Opening a connection waits at most this (or the backend's timeout, if shorter).
CONNECT_TIMEOUT_S = 5.0
_NO_CREDIT = (0.0, 0.0, 0.0)


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
            tuple(values[7 + n : 10 + n]),
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
        news = ("-" if b is None else _num(b) for b in backlogs)
        reply = await self._run(
            name, "catch_up", _num(age), _num(shift), *news, *map(_num, marks), *map(_num, limits),
            *map(_num, intervals),
        )  # fmt: skip
        return tuple(float(x) for x in reply)

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

    async def renew(self, name: str, lease_s: float) -> None:
        await self._run(name, "renew", _num(lease_s))


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

    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self.url = url
        self.location = redact(url)
        # A blocking pool: with more callers than connections they queue for one. The default
        # pool raised MaxConnectionsError past 100 concurrent calls (found at 200 in flight by
        # the benchmarks, scenario 4).
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_timeout=timeout_s,
            socket_connect_timeout=min(timeout_s, CONNECT_TIMEOUT_S),
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self._client = aioredis.Redis.from_pool(pool)
        self.limiter = RedisLimiterStore(self._client)
        self.breaker = RedisBreakerStore(self._client)
        self.claims = RedisClaimStore(self._client)
        self.ledger = RedisLedgerStore(self._client, self.location)
        self.batches = RedisBatchStore(self._client)
        self.learned = RedisLearnedStore(self._client)
        #: The marker found (or written, `marker_created`) by `verify`.
        self.marker: str | None = None
        self.marker_created = False

    async def verify(self) -> None:
        """Ping the server, and find its marker or write the first one (see the module docstring)."""
        await self._client.ping()  # type: ignore[misc]
        fresh = f"{uuid.uuid4().hex}@{time.time():.0f}"
        self.marker_created = bool(await self._client.set(MARKER, fresh, nx=True))
        self.marker = fresh if self.marker_created else await self._client.get(MARKER)
        self.ledger.check_marker = True

    async def aclose(self) -> None:
        await self._client.aclose()
