"""The ledger and the claims on requests in flight in Redis (see `redis_store.py` for the backend).

Ledger entries are hashes, indexed by a sorted set on `created_at` for `stats`, `prune` and
`delete`; a put writes the entry, ends any claim on it and checks the store's marker in one MULTI
transaction. A claim is a key holding its owner that expires with its lease (`CLAIM_LUA`), and
taking one checks in the same script that the entry has no answer yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from llm_pipeline.claude.errors import StateStoreError
from llm_pipeline.claude.state.base import LedgerEntry, LedgerSelection, LedgerStats
from llm_pipeline.claude.state.redis_keys import CHUNK, MARKER, PREFIX, claim_key, ledger_key, num
from llm_pipeline.claude.state.redis_lua import CLAIM_LUA

__all__ = ["RedisClaimStore", "RedisLedgerStore"]

_LEDGER_FIELDS = ("key", "model", "message", "input_tokens", "output_tokens", "created_at", "step")


class RedisClaimStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self._script = client.register_script(CLAIM_LUA)

    async def claim(self, key: str, owner: str, lease_s: float, *, answered_too: bool = False) -> bool:
        held = await self._script(
            keys=[claim_key(key), ledger_key(key)],
            args=["claim", owner, _ms(lease_s), "1" if answered_too else "0"],
        )
        return bool(int(held))  # type: ignore[arg-type]

    async def renew(self, keys: Sequence[str], owner: str, lease_s: float) -> None:
        for i in range(0, len(keys), CHUNK):
            chunk = [claim_key(k) for k in keys[i : i + CHUNK]]
            await self._script(keys=chunk, args=["renew", owner, _ms(lease_s)])

    async def release(self, key: str, owner: str) -> None:
        await self._script(keys=[claim_key(key)], args=["release", owner, "0"])


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
        return ledger_key(fingerprint)

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
                    "created_at": num(entry.created_at),
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
        for i in range(0, len(members), CHUNK):
            async with self._client.pipeline(transaction=False) as pipe:
                for fingerprint, _ in members[i : i + CHUNK]:
                    pipe.hmget(self._key(fingerprint), ["input_tokens", "output_tokens"])
                for pair in await pipe.execute():
                    tokens_in += int(pair[0] or 0)
                    tokens_out += int(pair[1] or 0)
        scores = [score for _, score in members]
        return LedgerStats(
            len(members), min(scores, default=None), max(scores, default=None), tokens_in, tokens_out
        )

    async def prune(self, before: float) -> int:
        old = await self._client.zrangebyscore(self._index, "-inf", f"({num(before)}")
        await self._remove(old)
        return len(old)

    async def _remove(self, fingerprints: Sequence[str]) -> None:
        for i in range(0, len(fingerprints), CHUNK):
            chunk = fingerprints[i : i + CHUNK]
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(*(self._key(f) for f in chunk))
                pipe.zrem(self._index, *chunk)
                await pipe.execute()

    async def delete(self, selection: LedgerSelection) -> int:
        if not selection:
            return 0
        members = await self._client.zrange(self._index, 0, -1)
        doomed: list[str] = []
        for i in range(0, len(members), CHUNK):
            chunk = members[i : i + CHUNK]
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
