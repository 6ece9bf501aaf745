"""Body faults: a 200 whose body is not a valid Message, as a broken proxy or a newer API sends.

The request was accepted and answered, so it is billed like any success; only the bytes on the
wire are wrong. Three shapes, each a different way a client's parser can fail:

- `truncated_body`: the Message JSON cut in half (`application/json`, does not parse);
- `html_body`: an HTML error page with status 200 (`text/html`), as a misconfigured gateway sends;
- `unknown_block`: a well-formed Message whose content holds a block type no SDK knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from llm_pipeline.simulator.wire import dumps

__all__ = ["bad_body"]

_HTML = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The upstream answered, the gateway did not.</p></body></html>"
)


def bad_body(
    kind: str, message: Mapping[str, Any], request_id: str, headers: Mapping[str, str]
) -> web.Response:
    """The 200 response for body fault `kind`, carrying `message` (or what is left of it)."""
    all_headers = {**headers, "request-id": request_id}
    if kind == "truncated_body":
        body = dumps(message)
        return web.Response(body=body[: len(body) // 2], headers=all_headers, content_type="application/json")
    if kind == "html_body":
        return web.Response(text=_HTML, headers=all_headers, content_type="text/html")
    if kind == "unknown_block":
        block = {"type": "hologram", "frames": 24, "data": "AAEC"}
        body = dumps({**message, "content": [block, *message["content"]]})
        return web.Response(body=body, headers=all_headers, content_type="application/json")
    raise ValueError(f"not a body fault: {kind!r}")
