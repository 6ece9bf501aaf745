"""The API's wire conventions: ids, JSON bodies and the error envelope.

Errors travel as `ApiError` through the handlers and leave as the body the real API sends,
`{"type": "error", "error": {"type": ..., "message": ...}, "request_id": "req_..."}`, so the SDK
maps each status to its exception class exactly as it would in production.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from aiohttp import web

__all__ = [
    "ERROR_TYPES",
    "ApiError",
    "dumps",
    "error_response",
    "json_response",
    "new_id",
]

#: Status code -> `error.type` of the Anthropic error envelope (ANTHROPIC_FACTS §4).
ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_JSON = "application/json"


class ApiError(Exception):
    """An API error on its way to the client: status, error type, message and extra headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ERROR_TYPES.get(status, "api_error")
        self.headers = dict(headers or {})

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {"type": self.error_type, "message": self.message},
            "request_id": request_id,
        }


def new_id(prefix: str) -> str:
    """A unique id shaped like Anthropic's (`req_011C...`, `msg_01...`, `toolu_01...`)."""
    return f"{prefix}_01{os.urandom(12).hex()}"


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(
    data: Any, request_id: str, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    all_headers = {"request-id": request_id}
    if headers:
        all_headers.update(headers)
    return web.Response(body=dumps(data), status=status, headers=all_headers, content_type=_JSON)


def error_response(error: ApiError, request_id: str) -> web.Response:
    return json_response(error.body(request_id), request_id, status=error.status, headers=error.headers)
