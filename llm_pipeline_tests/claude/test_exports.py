"""Pins the public surface of `llm_pipeline.claude` (like httpx's test_exported_members)."""

from __future__ import annotations

import llm_pipeline.claude as claude


def test_public_surface_is_pinned() -> None:
    assert sorted(claude.__all__) == [
        "Aborted",
        "AuthError",
        "BadOutput",
        "BadRequest",
        "BatchDeadlineExceeded",
        "Breaker",
        "CallRecord",
        "CallResult",
        "CircuitOpen",
        "ClaudeSettings",
        "Client",
        "ConnectionFailed",
        "Drain",
        "Interrupted",
        "LLMError",
        "Ledger",
        "Limiter",
        "ModelNotFound",
        "Overloaded",
        "PermanentError",
        "Progress",
        "RateLimited",
        "Request",
        "RetryPolicy",
        "RetryableError",
        "Runner",
        "ServerError",
        "StateStoreError",
        "Timeout",
        "open_client",
    ]


def test_every_exported_name_exists_and_lives_in_the_package() -> None:
    for name in claude.__all__:
        member = getattr(claude, name)
        assert member.__module__.startswith("llm_pipeline.claude."), name
