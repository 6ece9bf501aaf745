"""A prefix cache behind `cache_control`, so usage shows cache writes first and reads after.

Like the real API: a breakpoint is a block marked `cache_control` (or the last block when the
request has a top-level `cache_control`); the prefix up to it, in render order tools → system →
messages and per model, is cached for its `ttl` (5 minutes unless "1h") once it holds at least
`min_tokens`. A request reads the longest cached prefix and writes the rest up to its last
breakpoint; a read refreshes the entry's lifetime.
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

__all__ = ["CacheUsage", "PromptCache"]

_TTL_S = {"5m": 300.0, "1h": 3600.0}
MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class CacheUsage:
    read: int = 0
    created: int = 0
    created_1h: int = 0


_NO_CACHE = CacheUsage()


class PromptCache:
    def __init__(self, min_tokens: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._min_tokens = min_tokens
        self._clock = clock
        self._entries: OrderedDict[str, float] = OrderedDict()

    def use(
        self, model: str, pieces: Sequence[PromptPiece], automatic: Mapping[str, Any] | None
    ) -> CacheUsage:
        marks = [i for i, p in enumerate(pieces) if p.cache_control]
        if automatic and pieces and (not marks or marks[-1] != len(pieces) - 1):
            marks.append(len(pieces) - 1)
        if not marks:
            return _NO_CACHE
        now = self._clock()
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
        for size, key, ttl in prefixes:
            expires = self._entries.get(key)
            if expires is not None and expires > now:
                read = size
                self._entries[key] = now + ttl
        last_size, _, last_ttl = prefixes[-1]
        created = 0
        if last_size >= self._min_tokens and last_size > read:
            created = last_size - read
        for size, key, ttl in prefixes:
            if size >= self._min_tokens and self._entries.get(key, 0.0) <= now:
                self._entries[key] = now + ttl
        self._evict(now)
        return CacheUsage(read, created, created if last_ttl > 300.0 else 0)

    def _evict(self, now: float) -> None:
        if len(self._entries) <= MAX_ENTRIES:
            return
        for key in [k for k, expires in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
