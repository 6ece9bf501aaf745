"""The one place SDK exceptions become the call stack's typed errors (`errors.py`).

Like httpx's `map_httpcore_exceptions`: a context manager around the SDK call re-raises each
library error as the most specific `LLMError`, `raise ... from exc`, keeping the status code,
the `request-id` and the parsed Retry-After. Nothing else in `claude/` catches SDK errors.

    APITimeoutError, asyncio timeout      -> Timeout
    APIConnectionError (dropped, refused) -> ConnectionFailed
    429                                   -> RateLimited (retry_after, limits); spend cap: AuthError
    529                                   -> Overloaded
    401, 402, 403                         -> AuthError (systemic: a person must act)
    404 for a Messages call (`model=`)    -> ModelNotFound (systemic: the model is wrong or retired)
    408                                   -> Timeout
    409, 5xx                              -> ServerError
    other 4xx                             -> BadRequest
    a 2xx whose body is not a valid       -> ServerError with status_code 200 (retried like a 5xx;
      Message (`read_message`)               the body is never stored)
"""

from __future__ import annotations

from collections.abc import Callable

import anthropic

from llm_pipeline.claude.errors import (
    AuthError,
    BadRequest,
    ConnectionFailed,
    LLMError,
    ModelNotFound,
    Overloaded,
    RateLimited,
    ServerError,
    Timeout,
)
from llm_pipeline.claude.retry import parse_retry_after
from llm_pipeline.claude.transport import rate_limit_headers

__all__ = ["SPEND_CAP_CODES", "map_sdk_errors"]

#: 429s that no wait fixes: the account's spend cap (ANTHROPIC_FACTS §2), until someone acts.
SPEND_CAP_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
    }
)


def _from_status(exc: anthropic.APIStatusError, now: float, model: str | None) -> LLMError:
    status = exc.status_code
    detail = exc.api_message or exc.message
    text = f"{status} {exc.type or 'error'}: {detail}"
    fields = {"status_code": status, "request_id": exc.request_id}
    if status == 429:
        if exc.error_code in SPEND_CAP_CODES:
            return AuthError(f"spend limit reached, raise it in the Console ({text})", **fields)
        return RateLimited(
            text,
            retry_after=parse_retry_after(dict(exc.response.headers), now),
            limits=rate_limit_headers(exc.response.headers),
            **fields,
        )
    if status == 529:
        return Overloaded(text, **fields)
    if status in (401, 402, 403):
        return AuthError(text, **fields)
    if status == 404 and model is not None:
        return ModelNotFound(f"model {model!r} does not exist or is retired ({text})", model=model, **fields)
    if status == 408:
        return Timeout(text, **fields)
    if status == 409 or status >= 500:
        return ServerError(text, **fields)
    return BadRequest(text, **fields)


def _mapped(
    exc: BaseException, now: Callable[[], float], timeout_s: float | None, model: str | None
) -> LLMError | None:
    if isinstance(exc, anthropic.APITimeoutError | TimeoutError):
        return Timeout(f"no answer within the timeout ({timeout_s} s)")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__
        return ConnectionFailed(f"{exc.message} ({type(cause).__name__ if cause else 'no detail'})")
    if isinstance(exc, anthropic.APIStatusError):
        return _from_status(exc, now(), model)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return ServerError(
            f"malformed {exc.status_code} response: {exc.message}",
            status_code=exc.status_code,
            request_id=exc.response.headers.get("request-id"),
        )
    return None


class map_sdk_errors:  # lower case: used like contextlib.suppress
    """Re-raise SDK (and asyncio timeout) exceptions as `LLMError`s; `now` (wall clock) dates a
    Retry-After; `model` marks a Messages call, whose 404 means the model is not there.

    A class rather than a `@contextmanager` generator: it is entered once per attempt and lives
    across the whole HTTP exchange, and one small object is cheaper than a generator, its frame
    and a wrapper, at 1,000 calls/s.
    """

    __slots__ = ("_model", "_now", "_timeout_s")

    def __init__(
        self, now: Callable[[], float], *, timeout_s: float | None = None, model: str | None = None
    ) -> None:
        self._now = now
        self._timeout_s = timeout_s
        self._model = model

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None:
            return False
        mapped = _mapped(exc, self._now, self._timeout_s, self._model)
        if mapped is None:
            return False
        raise mapped from exc
