"""State locations as they may be shown: the password of a `redis://` URL never leaves the process.

`LLM_PIPELINE_STATE=redis://:secret@host:6379/0` names where state lives, and that name goes into
log lines, error messages and `llm-pipeline ledger` output; `redact` keeps host, port, database
and user (what a person needs to find the server) and replaces the password, and any
`password=` query parameter, with `***`. A directory path is returned unchanged.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["redact"]

_HIDDEN = "***"
_SECRET_PARAMS = frozenset({"password", "pass", "pwd", "secret", "token"})


def redact(location: str) -> str:
    """`location` with any credentials replaced by `***`."""
    if "://" not in location:
        return location
    parts = urlsplit(location)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user = credentials.split(":", 1)[0] if ":" in credentials else ""
        netloc = f"{user}:{_HIDDEN}@{host}" if ":" in credentials else f"{_HIDDEN}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, _HIDDEN if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
