"""`llm-pipeline ledger stats|prune`: look after the durable request → answer store.

The ledger is what makes re-runs free, so it is never pruned automatically: a stored answer only
goes when someone decides answers older than some age are no longer worth keeping.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TextIO, TypeVar

from llm_pipeline.claude.clock import SystemClock
from llm_pipeline.claude.ledger import Ledger
from llm_pipeline.claude.state import open_state
from llm_pipeline.settings import resolve_state

__all__ = ["parse_age", "prune", "stats"]

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
    print(f"ledger at {location or 'memory (nothing persisted)'}", file=out)
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
    print(f"removed {removed} answer(s) stored more than {age} ago from {location}", file=out)
    return 0


async def _with_ledger(location: str | None, action: Callable[[Ledger], Awaitable[T]]) -> T:
    clock = SystemClock()
    backend = open_state(location, clock.now)
    try:
        return await action(Ledger(backend.ledger, clock=clock))
    finally:
        await backend.aclose()


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
