"""A prefix cache behind `cache_control`, so usage shows cache writes first and reads after.

Like the real API: a breakpoint is a block marked `cache_control` (or the last block when the
request has a top-level `cache_control`); the prefix up to it, in render order tools → output
format → system → messages and per model, is cached for its `ttl` (5 minutes unless "1h") once it
holds at least the model's minimum (`min_tokens_for`). A request reads the longest cached prefix
and writes the rest up to its last breakpoint; a read refreshes the entry's lifetime.

Three steps, because the API's entry is only readable once the response that wrote it has started
(ANTHROPIC_FACTS §3): `lookup` says what a request would read and write without changing anything
(the rate limiter needs the read size before it admits the request), `begin` refreshes what an
admitted request reads, and `publish` makes its writes readable when its response starts. Requests
that arrive in between find nothing and write the prefix again, as parallel first calls do on
the real API.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llm_pipeline.simulator.tokens import PromptPiece

__all__ = ["CacheLookup", "CacheUsage", "PromptCache"]

_TTL_S = {"5m": 300.0, "1h": 3600.0}
MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class CacheUsage:
    read: int = 0
    created: int = 0
    created_1h: int = 0


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """What one request reads and writes: its usage, and the prefixes (key, ttl) involved."""

    usage: CacheUsage = CacheUsage()
    reads: tuple[tuple[str, float], ...] = ()
    writes: tuple[tuple[str, float], ...] = ()


_NO_CACHE = CacheLookup()


class PromptCache:
    def __init__(
        self, min_tokens_for: Callable[[str], int], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._min_tokens_for = min_tokens_for
        self._clock = clock
        self._entries: OrderedDict[str, float] = OrderedDict()

    def lookup(
        self, model: str, pieces: Sequence[PromptPiece], automatic: Mapping[str, Any] | None
    ) -> CacheLookup:
        """What the request would read and write now; changes nothing."""
        marks = [i for i, p in enumerate(pieces) if p.cache_control]
        if automatic and pieces and (not marks or marks[-1] != len(pieces) - 1):
            marks.append(len(pieces) - 1)
        if not marks:
            return _NO_CACHE
        now = self._clock()
        min_tokens = self._min_tokens_for(model)
        digest = hashlib.sha256(model.encode())
        prefixes: list[tuple[int, str, float]] = []
        tokens = 0
        start = 0
        for mark in marks:
            for piece in pieces[start : mark + 1]:
                tokens += piece.tokens
                digest.update(json.dumps(piece.content, sort_keys=True, ensure_ascii=False).encode())
            start = mark + 1
            control = pieces[mark].cache_control or automatic or {}
            prefixes.append((tokens, digest.copy().hexdigest(), _TTL_S.get(control.get("ttl", "5m"), 300.0)))
        read = 0
        reads: list[tuple[str, float]] = []
        for size, key, ttl in prefixes:
            if self._entries.get(key, 0.0) > now:
                read = size
                reads.append((key, ttl))
        last_size, _, last_ttl = prefixes[-1]
        created = last_size - read if last_size >= min_tokens and last_size > read else 0
        writes = tuple(
            (key, ttl)
            for size, key, ttl in prefixes
            if size >= min_tokens and self._entries.get(key, 0.0) <= now
        )
        usage = CacheUsage(read, created, created if last_ttl > 300.0 else 0)
        return CacheLookup(usage, tuple(reads), writes)

    def begin(self, lookup: CacheLookup) -> None:
        """The request was admitted: what it reads lives another TTL from now."""
        now = self._clock()
        for key, ttl in lookup.reads:
            self._entries[key] = max(self._entries.get(key, 0.0), now + ttl)

    def publish(self, lookup: CacheLookup) -> None:
        """The request's response has started: what it wrote is readable from now on."""
        if not lookup.writes:
            return
        now = self._clock()
        for key, ttl in lookup.writes:
            self._entries[key] = max(self._entries.get(key, 0.0), now + ttl)
        self._evict(now)

    def evict_all(self) -> int:
        """Forget every entry (the API may evict before the TTL); returns how many there were."""
        count = len(self._entries)
        self._entries.clear()
        return count

    def _evict(self, now: float) -> None:
        if len(self._entries) <= MAX_ENTRIES:
            return
        for key in [k for k, expires in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
