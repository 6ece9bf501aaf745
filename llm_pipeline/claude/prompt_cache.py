"""The prompt cache as the call stack sees it: which requests share a cached prefix, whether it is
warm, and the warm-up that lets the first of them write it alone.

A request's cacheable prefix is everything up to its last `cache_control` marker in the API's
render order (tools, the output format, system, messages); requests with the same model and the
same prefix bytes share one cache entry (ANTHROPIC_FACTS §7). Two things follow for a limiter
and a fan-out (ANTHROPIC_FACTS §2, §3):

- Booking. On current models a cache read is billed but does not count toward the
  input-tokens-per-minute limit; what counts is the uncached input plus cache writes. So once a
  prefix is *known* warm, a call books its input estimate minus the prefix's estimate, and usage
  settles the difference as for any call. Known means learned from usage, per model and prefix,
  never assumed: the prefix is warm while the latest response for it read it from the cache
  (`cache_read_input_tokens` > 0). A response that did not (the entry expired or was evicted, so
  it was written again; or the model does not cache a prefix that short) makes it cold, and the
  next calls are booked in full until a response reads it again. On the older models whose ITPM
  does count cache reads, the server's `-remaining` headers show less room than booked, and the
  limiter's `observe` catches up as for any traffic it did not book.
- Warm-up. An entry is readable only once the response that wrote it has started, so parallel
  first calls would each pay the write (1.25x or 2x the input price). The first call with a new
  prefix therefore goes alone (`WarmUp.admit` says it is the writer); the others wait until its
  answer has arrived (`opened`), then fan out and read. If the writer fails, the next waiter
  becomes the writer (`abandoned`). A prefix whose first answer shows the model did not cache it
  opens all the same: nothing is gained by waiting.

Both are per client (`attempt.py` holds them; a pipeline step has one client): each process of a
backfill warms its own prefix once, and books from what its own responses showed. A top-level
`cache_control` (automatic caching of the whole prompt) is not a shared prefix and is ignored here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llm_pipeline.claude.token_estimate import estimate_input_tokens

__all__ = ["CachePrefix", "PrefixWarmth", "WarmUp", "cache_prefix"]

#: Prefixes remembered per client (a pipeline has one or two per step; this only bounds memory).
MAX_PREFIXES = 1_024
_REQUEST_OVERHEAD = estimate_input_tokens({})


@dataclass(frozen=True, slots=True)
class CachePrefix:
    """One shared, cacheable prefix: its identity and the limiter's estimate of its tokens."""

    key: str
    estimate: int


def _marked(block: Any) -> bool:
    return isinstance(block, Mapping) and bool(block.get("cache_control"))


def cache_prefix(params: Mapping[str, Any]) -> CachePrefix | None:
    """The prefix up to the last `cache_control` marker of a request, or None when it has none."""
    tools = list(params.get("tools") or ())
    system = params.get("system")
    system_blocks = list(system) if isinstance(system, list) else []
    messages = list(params.get("messages") or ())
    last: tuple[str, int, int] | None = None
    for i, tool in enumerate(tools):
        if _marked(tool):
            last = ("tools", i, 0)
    for i, block in enumerate(system_blocks):
        if _marked(block):
            last = ("system", i, 0)
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if _marked(block):
                last = ("messages", i, j)
    if last is None:
        return None
    where, i, j = last
    output_config = params.get("output_config")
    fmt = output_config.get("format") if isinstance(output_config, Mapping) else None
    prefix: dict[str, Any] = {
        "model": params.get("model"),
        "tools": tools[: i + 1] if where == "tools" else tools,
    }
    if where != "tools":
        prefix["output_format"] = fmt
        prefix["system"] = system_blocks[: i + 1] if where == "system" else system
    if where == "messages":
        head = [dict(m) for m in messages[:i]]
        head.append({**messages[i], "content": messages[i]["content"][: j + 1]})
        prefix["messages"] = head
    canonical = json.dumps(prefix, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    counted = {
        "tools": prefix.get("tools"),
        "output_config": {"format": fmt} if where != "tools" and fmt is not None else None,
        "system": prefix.get("system"),
        "messages": prefix.get("messages"),
    }
    estimate = estimate_input_tokens(counted) - _REQUEST_OVERHEAD  # the overhead stays with the rest
    return CachePrefix(hashlib.sha256(canonical.encode()).hexdigest(), estimate)


class PrefixWarmth:
    """What usage taught about each prefix: is it being read from the cache (see the module doc)?"""

    __slots__ = ("_warm",)

    def __init__(self) -> None:
        self._warm: OrderedDict[str, bool] = OrderedDict()

    def booking(self, prefix: CachePrefix | None, estimate: int) -> int:
        """The input tokens to book for a call estimated at `estimate` that carries `prefix`."""
        if prefix is None or not self._warm.get(prefix.key, False):
            return estimate
        return max(1, estimate - prefix.estimate)

    def observe(self, prefix: CachePrefix | None, usage: Any) -> None:
        """Learn from one response's usage whether its prefix was read from the cache."""
        if prefix is None:
            return
        self._warm[prefix.key] = bool(getattr(usage, "cache_read_input_tokens", 0) or 0)
        self._warm.move_to_end(prefix.key)
        while len(self._warm) > MAX_PREFIXES:
            self._warm.popitem(last=False)

    def is_warm(self, prefix: CachePrefix) -> bool:
        return self._warm.get(prefix.key, False)

    def __repr__(self) -> str:
        warm = sum(self._warm.values())
        return f"<PrefixWarmth {warm} warm / {len(self._warm)} known>"


class WarmUp:
    """The first call with a new prefix goes alone; the rest wait until its answer has arrived.

    Asyncio objects are made on the running loop when first needed, never in `__init__`.
    """

    __slots__ = ("_open", "_writing")

    def __init__(self) -> None:
        self._open: OrderedDict[str, None] = OrderedDict()
        self._writing: dict[str, asyncio.Event] = {}

    async def admit(self, prefix: CachePrefix) -> bool:
        """Wait for this caller's turn: True means it writes the prefix (and must report back)."""
        while True:
            if prefix.key in self._open:
                return False
            writing = self._writing.get(prefix.key)
            if writing is None:
                self._writing[prefix.key] = asyncio.Event()
                return True
            await writing.wait()

    def opened(self, prefix: CachePrefix) -> None:
        """The writer's answer arrived: everyone may go (the entry is readable, or never will be)."""
        self._open[prefix.key] = None
        self._open.move_to_end(prefix.key)
        while len(self._open) > MAX_PREFIXES:
            self._open.popitem(last=False)
        self._release(prefix)

    def abandoned(self, prefix: CachePrefix) -> None:
        """The writer failed or was cancelled: the next waiter becomes the writer."""
        self._release(prefix)

    def _release(self, prefix: CachePrefix) -> None:
        writing = self._writing.pop(prefix.key, None)
        if writing is not None:
            writing.set()

    def __repr__(self) -> str:
        return f"<WarmUp open={len(self._open)} writing={len(self._writing)}>"
