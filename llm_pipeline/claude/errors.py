"""The call stack's errors: one typed hierarchy, mapped from the SDK at one boundary.

```
LLMError
├── RetryableError           worth another attempt after a wait
│   ├── RateLimited          429 (carries retry_after)
│   ├── Overloaded           529
│   ├── ServerError          500, 502, 503, 504 and other 5xx, 409
│   ├── Timeout              the call exceeded its timeout (or the server hung)
│   └── ConnectionFailed     the connection dropped or could not be opened
├── PermanentError           the same request will fail the same way
│   ├── BadRequest           400, 404, 413, 422 and other 4xx
│   │   └── ModelNotFound    404 for a Messages call: the model is wrong or retired
│   └── AuthError            401, 403 (also 402 billing): a person must act
├── CircuitOpen              the breaker is failing calls fast (names the last upstream error)
├── StateStoreError          the shared state (SQLite files, Redis) failed or lost its data
├── BadOutput                the model answered, but not in the shape we asked for
└── Aborted                  the run stopped before this request was tried
```

`AuthError`, `ModelNotFound`, `CircuitOpen` and `StateStoreError` are *systemic*: every other
request will meet them too, so the Dagster layer fails the asset instead of writing a partition
full of error rows. A malformed 200 (a body that is not a valid Message) is a `ServerError` with
`status_code=200`: retried like a 5xx.

Every error keeps `status_code`, `request_id` and `retry_after` (seconds) where the server sent
them, so rows and logs can name the upstream request.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "Aborted",
    "AuthError",
    "BadOutput",
    "BadRequest",
    "CircuitOpen",
    "ConnectionFailed",
    "LLMError",
    "ModelNotFound",
    "Overloaded",
    "PermanentError",
    "RateLimited",
    "RetryableError",
    "ServerError",
    "StateStoreError",
    "Timeout",
]


class LLMError(Exception):
    """Base of every error the call stack reports for a request."""

    systemic: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [f"{type(self).__name__}: {self.message}"]
        if self.status_code is not None:
            parts.append(f"status={self.status_code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class RetryableError(LLMError):
    """An attempt failed in a way that another attempt, after a wait, may fix."""


class RateLimited(RetryableError):
    """429: the account's (or an acceleration) limit; `retry_after` says when to come back.

    `limits` are the `anthropic-ratelimit-*` headers the 429 carried: when there are any, the
    server's rate limiter itself answered and says how empty the account's buckets are.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        limits: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, request_id=request_id, retry_after=retry_after)
        self.limits: Mapping[str, str] = dict(limits or {})

    @property
    def reports_limits(self) -> bool:
        return bool(self.limits)


class Overloaded(RetryableError):
    """529: the API is overloaded for everyone; not our rate limit."""


class ServerError(RetryableError):
    """A 5xx (other than 529) or a 409 conflict."""


class Timeout(RetryableError):
    """The call took longer than its timeout; the server may have hung."""


class ConnectionFailed(RetryableError):
    """The connection could not be opened or was dropped mid-response."""


class PermanentError(LLMError):
    """Retrying the same request cannot help."""


class BadRequest(PermanentError):
    """4xx other than auth: the request itself is wrong (shape, size, unknown model)."""


class ModelNotFound(BadRequest):
    """404 for a Messages call: the model id is wrong or retired. Every request names the same model."""

    systemic = True

    def __init__(self, message: str, *, model: str, **fields: object) -> None:
        super().__init__(message, **fields)  # type: ignore[arg-type]
        self.model = model


class AuthError(PermanentError):
    """401/403 (and 402 billing): the key is wrong or lacks permission. A person must act."""

    systemic = True


class CircuitOpen(LLMError):
    """The breaker for a model is open: calls fail fast instead of piling onto a broken upstream."""

    systemic = True

    def __init__(self, message: str, *, model: str | None = None, last_error: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.last_error = last_error


class StateStoreError(LLMError):
    """The shared state failed: Redis unreachable, frozen or emptied; SQLite locked, read-only or full.

    `store` names where the state lives, credentials redacted. `lost` marks a store that forgot its
    data (every answer in it would be paid for again); `spooled` says where answers that could
    not be written wait for the next run (`claude/spool.py`).
    """

    systemic = True

    def __init__(
        self, message: str, *, store: str = "", lost: bool = False, spooled: str | None = None
    ) -> None:
        super().__init__(message)
        self.store = store
        self.lost = lost
        self.spooled = spooled


class BadOutput(LLMError):
    """The model answered, but the answer failed validation (schema, taxonomy, refusal, truncation)."""


class Aborted(LLMError):
    """The run was stopped (a systemic error elsewhere) before this request got an answer."""
