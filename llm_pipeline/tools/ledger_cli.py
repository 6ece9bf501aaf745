"""`llm-pipeline ledger stats|prune|delete|accept-reset`: look after the durable request → answer store.

The ledger is what makes re-runs free, so it is never pruned automatically: a stored answer only
goes when someone decides answers older than some age are no longer worth keeping, or deletes the
answers of one step, model, document key or fingerprint (after a prompt fix, or an answer that
should be asked again). `accept-reset` is for a Redis that lost its data: runs refuse to go on
(they would pay for every answer again) until someone accepts it here. The location is always
shown with its password redacted.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TextIO, TypeVar

from llm_pipeline.claude.clock import SystemClock
from llm_pipeline.claude.ledger import Ledger, LedgerSelection
from llm_pipeline.claude.spool import Spool
from llm_pipeline.claude.state import open_state, redact
from llm_pipeline.settings import resolve_spool_dir, resolve_state

__all__ = ["accept_reset", "delete", "parse_age", "prune", "stats"]

T = TypeVar("T")

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks", "": "days"}


def parse_age(text: str) -> timedelta:
    """'30d', '12h', '90m', '3600s', '2w' or a bare number of days."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"not an age: {text!r} (use e.g. 30d, 12h, 90m, 3600s, 2w)")
    number, unit = match.groups()
    return timedelta(**{_UNITS[unit]: float(number)})


def stats(state: str | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    location = resolve_state(state)
    summary = asyncio.run(_with_ledger(location, lambda ledger: ledger.stats()))
    print(f"ledger at {redact(location) if location else 'memory (nothing persisted)'}", file=out)
    print(f"  answers stored   {summary.entries}", file=out)
    print(f"  input tokens     {summary.input_tokens}  (paid once, free on every re-run)", file=out)
    print(f"  output tokens    {summary.output_tokens}", file=out)
    print(f"  oldest           {_when(summary.oldest)}", file=out)
    print(f"  newest           {_when(summary.newest)}", file=out)
    return 0


def prune(age: timedelta, state: str | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    location = resolve_state(state)
    removed = asyncio.run(_with_ledger(location, lambda ledger: ledger.prune(age)))
    print(f"removed {removed} answer(s) stored more than {age} ago from {_shown(location)}", file=out)
    return 0


def delete(selection: LedgerSelection, state: str | None = None, *, out: TextIO | None = None) -> int:
    """Delete the answers of the given steps, models, document keys or fingerprints (any match)."""
    out = out or sys.stdout
    if not selection:
        print("nothing selected: give --step, --model, --key or --fingerprint", file=out)
        return 2
    location = resolve_state(state)
    removed = asyncio.run(_with_ledger(location, lambda ledger: ledger.delete(selection)))
    print(f"removed {removed} answer(s) from {_shown(location)}; the next run asks for them again", file=out)
    return 0


def accept_reset(state: str | None = None, spool_dir: str | None = None, *, out: TextIO | None = None) -> int:
    """Accept that the Redis state lost its data: the next run records its new marker and goes on."""
    out = out or sys.stdout
    location = resolve_state(state)
    if location is None or "://" not in location:
        print(f"{_shown(location)} is not a Redis state: nothing to accept", file=out)
        return 2
    spool = Spool(resolve_spool_dir(spool_dir), redact(location), "redis")
    known = spool.forget_marker()
    what = "forgot the marker this machine had seen" if known else "no marker was remembered"
    print(f"{what} for {redact(location)}; the next run starts afresh (and pays for lost answers)", file=out)
    return 0


def _shown(location: str | None) -> str:
    return redact(location) if location else "memory"


async def _with_ledger(location: str | None, action: Callable[[Ledger], Awaitable[T]]) -> T:
    clock = SystemClock()
    backend = open_state(location, clock.now)
    await backend.verify()
    try:
        return await action(Ledger(backend.ledger, clock=clock))
    finally:
        await backend.aclose()


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
