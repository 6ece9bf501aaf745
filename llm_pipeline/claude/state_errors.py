"""The one place state-backend exceptions become `StateStoreError` (like `sdk_errors.py` for the SDK).

A backend raises what its library raises: `sqlite3.Error` for a locked, read-only or full SQLite
file, `redis.RedisError` for an unreachable, frozen or misconfigured Redis, `OSError` for a
state directory that cannot be made. The client wraps every use of the state in
`map_state_errors(location)`, which re-raises them as `StateStoreError` naming the store (its
password redacted) and saying what to do, `raise ... from exc`:

    sqlite "database is locked"         -> another process held the file's lock past the timeout
    sqlite read-only / cannot open      -> the state directory is not writable
    sqlite "disk is full"               -> the disk holding the state directory is full
    redis TimeoutError                  -> the server did not answer within the timeout (frozen?)
    redis ConnectionError               -> the server is unreachable (down, wrong host or port)
    redis AuthenticationError / other   -> the server refused us (password, permissions)
"""

from __future__ import annotations

import errno
import sqlite3

import redis.exceptions

from llm_pipeline.claude.errors import StateStoreError

__all__ = ["map_state_errors", "state_error"]

#: OSErrors that concern the state directory itself (a network OSError is the SDK's business).
_FILE_ERRORS = (PermissionError, FileNotFoundError, NotADirectoryError, FileExistsError)
_FILE_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT})


def _sqlite_advice(text: str, location: str) -> str:
    if "locked" in text or "busy" in text:
        return (
            f"a file in the state directory {location} stayed locked by another process; find it "
            "(`fuser` / `lsof` on ledger.sqlite and limits.sqlite) or raise LLM_PIPELINE_STATE_TIMEOUT_S"
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return (
            f"the state directory {location} is not writable: fix its permissions or mount, "
            "or point LLM_PIPELINE_STATE elsewhere"
        )
    if "full" in text:
        return f"the disk holding the state directory {location} is full: free space"
    return f"the SQLite state in {location} failed"


def state_error(exc: BaseException, location: str, secret: str | None = None) -> StateStoreError | None:
    """The `StateStoreError` for a backend library's exception, or None if it is not one."""
    text = str(exc)
    if secret:
        text = text.replace(secret, "***")
    if isinstance(exc, sqlite3.Error):
        advice = _sqlite_advice(text.lower(), location)
        return StateStoreError(f"state store failed: {advice} ({type(exc).__name__}: {text})", store=location)
    if isinstance(exc, redis.exceptions.TimeoutError):
        advice = f"Redis at {location} did not answer in time (stopped, overloaded or unreachable)"
    elif isinstance(exc, redis.exceptions.AuthenticationError):
        advice = f"Redis at {location} refused the credentials in LLM_PIPELINE_STATE"
    elif isinstance(exc, redis.exceptions.ConnectionError):
        advice = f"Redis at {location} is unreachable (down, or a wrong host or port)"
    elif isinstance(exc, redis.exceptions.RedisError):
        advice = f"Redis at {location} failed"
    elif isinstance(exc, _FILE_ERRORS) or (isinstance(exc, OSError) and exc.errno in _FILE_ERRNOS):
        advice = f"the state location {location} cannot be used (permissions, a read-only or full disk)"
    else:
        return None
    return StateStoreError(f"state store failed: {advice} ({type(exc).__name__}: {text})", store=location)


class map_state_errors:  # lower case: used like contextlib.suppress
    """Re-raise backend library exceptions as `StateStoreError`; a class, as `map_sdk_errors` is."""

    __slots__ = ("_location", "_secret")

    def __init__(self, location: str, secret: str | None = None) -> None:
        self._location = location
        self._secret = secret

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or isinstance(exc, StateStoreError):
            return False
        mapped = state_error(exc, self._location, self._secret)
        if mapped is None:
            return False
        raise mapped from exc
