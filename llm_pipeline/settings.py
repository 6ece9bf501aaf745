"""Where the shared limiter, breaker and ledger state lives (ARCHITECTURE §2, `LLM_PIPELINE_STATE`).

Kept free of Dagster so the `llm-pipeline ledger` commands resolve the same location as a run,
without loading Dagster.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REDIS_SCHEMES", "resolve_state"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def resolve_state(configured: str | None = None) -> str | None:
    """Config, else `$LLM_PIPELINE_STATE`, else `$DAGSTER_HOME`, else `.llm_state` (read now).

    `memory` means this process only (None: nothing shared); a `redis://` URL is returned as is;
    a directory is made absolute and created, so every process of a run agrees on it.
    """
    value = configured or os.environ.get("LLM_PIPELINE_STATE")
    if value == "memory":
        return None
    value = value or os.environ.get("DAGSTER_HOME") or ".llm_state"
    if value.startswith(REDIS_SCHEMES):
        return value
    path = Path(value).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return str(path)
