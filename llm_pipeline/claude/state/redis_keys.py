"""Key names and number formatting shared by the Redis stores (`redis_store.py`, `redis_ledger.py`)."""

from __future__ import annotations

__all__ = ["CHUNK", "MARKER", "PREFIX", "claim_key", "ledger_key", "num"]

PREFIX = "llm_pipeline:"
#: Written once per store by `RedisBackend.verify`: its loss means the store forgot its data.
MARKER = f"{PREFIX}marker"
#: Keys per pipeline or script call when walking many entries.
CHUNK = 500


def num(x: float) -> str:
    return repr(float(x))


def ledger_key(fingerprint: str) -> str:
    return f"{PREFIX}ledger:{fingerprint}"


def claim_key(entry_key: str) -> str:
    return f"{PREFIX}claim:{entry_key}"
