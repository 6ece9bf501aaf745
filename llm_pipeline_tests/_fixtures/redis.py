"""A throwaway `redis-server` for the whole session: 127.0.0.1, a free port, no persistence.

A missing binary FAILS the tests that need it instead of skipping them: the Redis backend is a
deliverable, and a quietly skipped test would hide that it was never exercised (CI installs the
Debian `redis-server` package).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest
import redis

from llm_pipeline_tests._servers import run_redis_server

__all__ = ["redis_server", "redis_url"]

_START_TIMEOUT_S = 15.0


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start redis-server once per session and return its base URL; stop it at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed (apt-get install -y redis-server); the Redis tests need it"
        )
    workdir = tmp_path_factory.mktemp("redis")
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(run_redis_server(binary, workdir, start_timeout_s=_START_TIMEOUT_S))
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield url


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The session server, emptied before each test so tests never see each other's keys."""
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server
