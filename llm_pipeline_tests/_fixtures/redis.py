"""A throwaway `redis-server` for the whole session: 127.0.0.1, a free port, no persistence.

A missing binary FAILS the tests that need it instead of skipping them: the Redis backend is a
deliverable, and a quietly skipped test would hide that it was never exercised. `make test` finds or
installs the binary before the suite starts (`system_deps.py`; `REDIS_SERVER=/path` overrides).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import redis

from llm_pipeline_tests._servers import run_redis_server
from llm_pipeline_tests.system_deps import REDIS_SERVER, find

__all__ = ["redis_server", "redis_url"]

_START_TIMEOUT_S = 15.0


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start redis-server once per session and return its base URL; stop it at the end."""
    binary = find(REDIS_SERVER)
    if binary is None:
        pytest.fail(
            "redis-server is missing: run `make test` (it installs it as root, or prints the apt-get "
            "command), or set REDIS_SERVER=/path/to/redis-server"
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
