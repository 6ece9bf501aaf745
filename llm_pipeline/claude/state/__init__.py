"""Where limiter, breaker, claim and ledger state lives, chosen by `settings.state`.

None            memory: this stack only
"redis://..."   Redis (also rediss://, unix://): every machine
any other text  a directory of SQLite files: every process on this machine

`timeout_s` bounds how long one state operation waits for a locked SQLite file or a silent Redis.
Opening raises the backend library's error; `claude/state_errors.py` maps it (and every later
one) to `StateStoreError`, naming the location with `redact`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from llm_pipeline.claude.state.base import StateBackend
from llm_pipeline.claude.state.redact import redact

__all__ = ["StateBackend", "open_state", "redact"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_state(
    spec: str | None,
    now: Callable[[], float],
    *,
    timeout_s: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> StateBackend:
    """Open the backend `spec` names; `now` is the clock for backends that use the caller's time."""
    if spec is None or spec == "":
        from llm_pipeline.claude.state.memory import MemoryBackend

        return MemoryBackend(now)
    if spec.startswith(_REDIS_SCHEMES):
        from llm_pipeline.claude.state.redis_store import RedisBackend

        return RedisBackend(spec, timeout_s=timeout_s)
    from llm_pipeline.claude.state.sqlite import SqliteBackend

    return SqliteBackend(spec, now, timeout_s=timeout_s, sleep=sleep)
