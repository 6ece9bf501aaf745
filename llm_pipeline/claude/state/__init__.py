"""Where limiter, breaker and ledger state lives, chosen by `settings.state`.

None            memory: this stack only
"redis://..."   Redis (also rediss://, unix://): every machine
any other text  a directory of SQLite files: every process on this machine
"""

from __future__ import annotations

from collections.abc import Callable

from llm_pipeline.claude.state.base import StateBackend

__all__ = ["StateBackend", "open_state"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_state(spec: str | None, now: Callable[[], float]) -> StateBackend:
    """Open the backend `spec` names; `now` is the clock for backends that use the caller's time."""
    if spec is None or spec == "":
        from llm_pipeline.claude.state.memory import MemoryBackend

        return MemoryBackend(now)
    if spec.startswith(_REDIS_SCHEMES):
        from llm_pipeline.claude.state.redis_store import RedisBackend

        return RedisBackend(spec)
    from llm_pipeline.claude.state.sqlite import SqliteBackend

    return SqliteBackend(spec, now)
