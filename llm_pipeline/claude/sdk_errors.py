"""The one place SDK exceptions become the call stack's typed errors (`errors.py`).

Like httpx's `map_httpcore_exceptions`: a context manager around the SDK call re-raises each
library error as the most specific `LLMError`, `raise ... from exc`, keeping the status code,
the `request-id` and the parsed Retry-After. Nothing else in `claude/` catches SDK errors.

    APITimeoutError, asyncio timeout      -> Timeout
    APIConnectionError (dropped, refused) -> ConnectionFailed
    429                                   -> RateLimited (retry_after)   | spend cap -> AuthError
    529                                   -> Overloaded
    401, 402, 403                         -> AuthError (systemic: a person must act)
    408                                   -> Timeout
    409, 5xx                              -> ServerError
    other 4xx                             -> BadRequest
    a 2xx the SDK could not validate      -> ServerError
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import anthropic

from llm_pipeline.claude.errors import (
    AuthError,
    BadRequest,
    ConnectionFailed,
    LLMError,
    Overloaded,
    RateLimited,
    ServerError,
    Timeout,
)
from llm_pipeline.claude.retry import parse_retry_after

__all__ = ["SPEND_CAP_CODES", "map_sdk_errors"]

#: 429s that no wait fixes: the account's spend cap (ANTHROPIC_FACTS §2), until someone acts.
SPEND_CAP_CODES = frozenset(
    {
        "enforced_spend_limit_reached",
        "contract_spend_limit_reached",
        "linked_organization_spend_limit_reached",
    }
)


def _from_status(exc: anthropic.APIStatusError, now: float) -> LLMError:
    status = exc.status_code
    detail = exc.api_message or exc.message
    text = f"{status} {exc.type or 'error'}: {detail}"
    fields = {"status_code": status, "request_id": exc.request_id}
    if status == 429:
        if exc.error_code in SPEND_CAP_CODES:
            return AuthError(f"spend limit reached, raise it in the Console ({text})", **fields)
        return RateLimited(text, retry_after=parse_retry_after(dict(exc.response.headers), now), **fields)
    if status == 529:
        return Overloaded(text, **fields)
    if status in (401, 402, 403):
        return AuthError(text, **fields)
    if status == 408:
        return Timeout(text, **fields)
    if status == 409 or status >= 500:
        return ServerError(text, **fields)
    return BadRequest(text, **fields)


@contextmanager
def map_sdk_errors(now: Callable[[], float], *, timeout_s: float | None = None) -> Iterator[None]:
    """Re-raise SDK (and asyncio timeout) exceptions as `LLMError`s; `now` dates a Retry-After."""
    try:
        yield
    except anthropic.APITimeoutError as exc:
        raise Timeout(f"no answer within the timeout ({timeout_s} s)") from exc
    except TimeoutError as exc:
        raise Timeout(f"no answer within the timeout ({timeout_s} s)") from exc
    except anthropic.APIConnectionError as exc:
        cause = exc.__cause__
        raise ConnectionFailed(f"{exc.message} ({type(cause).__name__ if cause else 'no detail'})") from exc
    except anthropic.APIStatusError as exc:
        raise _from_status(exc, now()) from exc
    except anthropic.APIResponseValidationError as exc:
        raise ServerError(f"response failed validation: {exc.message}", status_code=exc.status_code) from exc
