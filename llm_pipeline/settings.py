"""Every setting is "resource config, else environment variable, else default", resolved here.

ARCHITECTURE §2: each setting is an environment variable read when a run launches and also a field
of a resource; config wins over the environment. `setting` is that rule, once, with one kind of
error (`SettingError`, naming the variable and the value); the Dagster resources call it for each
field, and the tools (`llm-pipeline ledger`, the demo) call it without loading Dagster. The
environment is read when `setting` is called, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from upath import UPath

__all__ = [
    "DATA_DIR_ENV",
    "REDIS_SCHEMES",
    "SettingError",
    "fraction",
    "integer",
    "labels",
    "number",
    "positive_integer",
    "positive_number",
    "resolve_data_dir",
    "resolve_spool_dir",
    "resolve_state",
    "setting",
    "word",
]

T = TypeVar("T")
D = TypeVar("D")

DATA_DIR_ENV = "LLM_PIPELINE_DATA_DIR"
DEFAULT_DATA_DIR = "data"
STATE_ENV = "LLM_PIPELINE_STATE"
SPOOL_ENV = "LLM_PIPELINE_SPOOL_DIR"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class SettingError(ValueError):
    """A setting's value cannot be used; the message names where it came from and what it was."""


def integer(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("is not an integer") from None


def number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("is not a number") from None


def positive_number(raw: str) -> float:
    """A limit, a cap or a duration: a number above 0."""
    value = number(raw)
    if not value > 0:
        raise ValueError("must be a number > 0")
    return value


def positive_integer(raw: str) -> int:
    value = integer(raw)
    if value < 1:
        raise ValueError("must be an integer >= 1")
    return value


def fraction(raw: str) -> float:
    """A share of something: above 0, at most 1."""
    value = number(raw)
    if not 0 < value <= 1:
        raise ValueError("must be a fraction in (0, 1], e.g. 0.5 for half")
    return value


def word(raw: str) -> str:
    """A choice such as a mode or a backend: case and surrounding space do not matter."""
    return raw.strip().lower()


def labels(raw: str) -> list[str]:
    """A comma-separated list, each item stripped (empty items are kept, so validation sees them)."""
    return [item.strip() for item in raw.split(",")]


def setting(configured: T | str | None, env: str, parse: Callable[[str], T], default: D) -> T | D:
    """`configured` when set; else `$env` parsed, when set and not blank; else `default`.

    Text, from config or the environment, goes through `parse` alike (a blank one counts as unset);
    a value `parse` refuses raises `SettingError` naming the variable and the value.
    """
    if isinstance(configured, str):
        if configured.strip():
            return _parsed(parse, configured, f"{env} (resource config)")
    elif configured is not None:
        return configured
    raw = os.environ.get(env)
    if raw is None or not raw.strip():
        return default
    return _parsed(parse, raw, env)


def _parsed(parse: Callable[[str], T], raw: str, source: str) -> T:
    try:
        return parse(raw.strip())
    except ValueError as exc:
        raise SettingError(f"{source}={raw!r} {exc}") from None


def resolve_data_dir(configured: str | None = None) -> UPath:
    """The data root: `configured`, else `$LLM_PIPELINE_DATA_DIR`, else `data`.

    A local path or an fsspec URL (`s3://bucket/prefix`, ...; `warehouse/store.py`). The input reader
    and the IO manager both resolve through here, so they always agree. The message of a refused
    value is the store's own, which never repeats credentials found in a URL.
    """
    from llm_pipeline.warehouse.store import data_root  # fsspec on demand: the ledger CLI never needs it

    value = setting(configured, DATA_DIR_ENV, str, DEFAULT_DATA_DIR)
    try:
        return data_root(value)
    except ValueError as exc:
        raise SettingError(f"{DATA_DIR_ENV}: {exc}") from None


def resolve_state(configured: str | None = None) -> str | None:
    """Config, else `$LLM_PIPELINE_STATE`, else `$DAGSTER_HOME`, else `.llm_state` (read now).

    `memory` means this process only (None: nothing shared); a `redis://` URL is returned as is;
    a directory is made absolute and created, so every process of a run agrees on it.
    """
    value = setting(configured, STATE_ENV, str, None)
    if value == "memory":
        return None
    value = value or setting(None, "DAGSTER_HOME", str, ".llm_state")
    if value.startswith(REDIS_SCHEMES):
        return value
    path = Path(value).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def resolve_spool_dir(configured: str | None = None) -> str:
    """Where paid answers wait when the ledger cannot take them (`claude/spool.py`): config, else
    `$LLM_PIPELINE_SPOOL_DIR`, else `$DAGSTER_HOME/llm_spool`, else `.llm_state/spool` (made absolute).

    Deliberately not inside the state directory: the spool is for when that directory (or Redis)
    fails. A Dagster run can always write `$DAGSTER_HOME`; on Kubernetes point this at a volume
    that outlives the pod.
    """
    value = setting(configured, SPOOL_ENV, str, None)
    if value is None:
        home = setting(None, "DAGSTER_HOME", str, None)
        value = str(Path(home) / "llm_spool") if home else str(Path(".llm_state") / "spool")
    return str(Path(value).expanduser().resolve())
