"""Redis state (`settings.state = "redis://..."`): shared by every process on every machine.

Limiter and breaker changes run as Lua scripts (`redis_lua.py`), which Redis executes atomically
and which read the Redis server's `TIME`, so machines with skewed clocks still agree on when a
bucket refills. Callers only see relative seconds. Ledger entries are hashes, indexed by a
sorted set on `created_at` for `stats` and `prune`. A pending batch is one hash (its items as one
JSON value), listed in a sorted set per namespace; both are written in one MULTI transaction.
Claims on requests in flight are keys that expire with their lease (`CLAIM_LUA`).

Every operation waits at most `timeout_s` for the server (a frozen or unreachable Redis must fail
the step, not hang it); a connection the server dropped is reconnected once. `verify` pings the
server before any call and writes a marker key if there is none: the marker is how a Redis that
restarted empty (and so forgot every answer) is recognised, at start against the marker this
machine saw last (`claude/state_guard.py`), and mid-run by every ledger write, which checks it
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

from llm_pipeline.claude.errors import StateStoreError
from llm_pipeline.claude.state.base import (
    Booking,
    LedgerEntry,
    LedgerSelection,
    LedgerStats,
    PendingBatch,
    decode_items,
    encode_items,
)
from llm_pipeline.claude.state.circuit import Admission, BreakerPolicy, Transition
from llm_pipeline.claude.state.redact import redact
from llm_pipeline.claude.state.redis_lua import BREAKER_LUA, CLAIM_LUA, LIMITER_LUA

__all__ = ["RedisBackend"]

PREFIX = "llm_pipeline:"
#: Connections per stack; Lua calls take ~100 us, so a few dozen serve thousands of calls/s.
MAX_CONNECTIONS = 64
#: How long a caller waits for a free connection before the pool gives up.
POOL_WAIT_S = 60.0
#: Opening a connection waits at most this (or the backend's timeout, if shorter).
CONNECT_TIMEOUT_S = 5.0
_LEDGER_FIELDS = ("key", "model", "message", "input_tokens", "output_tokens", "created_at", "step")
MARKER = f"{PREFIX}marker"
_CHUNK = 500


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
    ) -> Booking:
        limit = "inf" if math.isinf(horizon) else _num(horizon)
        reply = await self._run(
            name, "reserve", *map(_num, costs), _num(tolerance), limit, *map(_num, credit)
        )
        values = [float(x) for x in reply]
        return Booking(
            values[0], tuple(values[1:4]), tuple(values[4:14]), values[14], values[15], bool(values[16])
        )

    async def adjust(self, name: str, deltas: Sequence[float]) -> None:
        await self._run(name, "adjust", *map(_num, deltas))

    async def undo(self, name: str, booking: Booking, costs: Sequence[float]) -> None:
        await self._run(name, "undo", _num(booking.version), *map(_num, booking.before), *map(_num, costs))

    async def cool_down(self, name: str, seconds: float, tolerance: float) -> None:
        await self._run(name, "cool_down", _num(seconds), _num(tolerance))

    async def raise_floor(self, name: str, backlogs: Sequence[float | None]) -> None:
        await self._run(name, "raise_floor", *("-" if b is None else _num(b) for b in backlogs))

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


class RedisClaimStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._script = client.register_script(CLAIM_LUA)

    async def claim(self, key: str, owner: str, lease_s: float, *, answered_too: bool = False) -> bool:
        held = await self._script(
            keys=[claim_key(key), f"{PREFIX}ledger:{key}"],
            args=["claim", owner, _ms(lease_s), "1" if answered_too else "0"],
        )
        return bool(int(held))  # type: ignore[arg-type]

    async def renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None:
        for i in range(0, len(keys), _CHUNK):
            chunk = [claim_key(k) for k in keys[i : i + _CHUNK]]
            await self._script(keys=chunk, args=["renew", owner, _ms(lease_s)])

    async def release(self, key: str, owner: str) -> None:
        await self._script(keys=[claim_key(key)], args=["release", owner, "0"])


def claim_key(entry_key: str) -> str:
    return f"{PREFIX}claim:{entry_key}"


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


class RedisLedgerStore:
    def __init__(self, client: aioredis.Redis, location: str) -> None:
        self._client = client
        self._location = location
        self._index = f"{PREFIX}ledger:index"
        #: Set by `RedisBackend.verify`, which made sure the marker exists: from then on its loss is news.
        self.check_marker = False

    def _key(self, fingerprint: str) -> str:
        return f"{PREFIX}ledger:{fingerprint}"

    async def get(self, fingerprints: Sequence[str]) -> LedgerEntry | None:
        for fingerprint in fingerprints:
            found = await self._client.hmget(self._key(fingerprint), _LEDGER_FIELDS)  # type: ignore[misc]
            if found[0] is not None:
                key, model, message, tokens_in, tokens_out, created, step = found
                tokens = int(tokens_in), int(tokens_out)
                return LedgerEntry(fingerprint, key, model, message, *tokens, float(created), step or "")
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
                    "step": entry.step,
                },
            )
            pipe.zadd(self._index, {entry.fingerprint: entry.created_at})
            pipe.delete(claim_key(entry.fingerprint))
            pipe.exists(MARKER)
            *_, marked = await pipe.execute()
        if self.check_marker and not marked:
            raise StateStoreError(
                f"Redis at {self._location} lost its data while this run used it (its marker key "
                f"{MARKER} is gone: restarted without persistence, flushed or evicted). Every answer "
                "stored there before is forgotten and would be paid for again; see the README's "
                "'Failure modes' before re-running.",
                store=self._location,
                lost=True,
            )

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
        await self._remove(old)
        return len(old)

    async def _remove(self, fingerprints: Sequence[str]) -> None:
        for i in range(0, len(fingerprints), _CHUNK):
            chunk = fingerprints[i : i + _CHUNK]
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(*(self._key(f) for f in chunk))
                pipe.zrem(self._index, *chunk)
                await pipe.execute()

    async def delete(self, selection: LedgerSelection) -> int:
        if not selection:
            return 0
        members = await self._client.zrange(self._index, 0, -1)
        doomed: list[str] = []
        for i in range(0, len(members), _CHUNK):
            chunk = members[i : i + _CHUNK]
            async with self._client.pipeline(transaction=False) as pipe:
                for fingerprint in chunk:
                    pipe.hmget(self._key(fingerprint), ["key", "model", "step"])
                fields = await pipe.execute()
            for fingerprint, (key, model, step) in zip(chunk, fields, strict=True):
                entry = LedgerEntry(fingerprint, key or "", model or "", "", 0, 0, 0.0, step or "")
                if selection.matches(entry):
                    doomed.append(fingerprint)
        await self._remove(doomed)
        return len(doomed)


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
