"""The async call stack: runner → client → limiter, retry, breaker, ledger, metrics.

Imports nothing from Dagster; the Dagster layer (`llm_pipeline.pipeline.resources`) is its only user there.
The public surface is below; every other module is an internal detail.
"""

from llm_pipeline.claude.batch_events import BatchDeadlineExceeded
from llm_pipeline.claude.breaker import Breaker
from llm_pipeline.claude.client import Client
from llm_pipeline.claude.drain import Drain, Interrupted
from llm_pipeline.claude.errors import (
    Aborted,
    AuthError,
    BadOutput,
    BadRequest,
    CircuitOpen,
    ConnectionFailed,
    LLMError,
    ModelNotFound,
    Overloaded,
    PermanentError,
    RateLimited,
    RetryableError,
    ServerError,
    StateStoreError,
    Timeout,
)
from llm_pipeline.claude.ledger import Ledger
from llm_pipeline.claude.limiter import Limiter
from llm_pipeline.claude.metrics import CallRecord
from llm_pipeline.claude.retry import RetryPolicy
from llm_pipeline.claude.runner import Progress, Runner
from llm_pipeline.claude.settings import ClaudeSettings
from llm_pipeline.claude.stack import open_client
from llm_pipeline.claude.types import CallResult, Request

__all__ = [
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
