"""Shared fixtures. Fixture families live in `_fixtures/` and are registered here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling
from xdist.workermanage import WorkerController

#: gcsfs reads this once, when it is imported (by the object-store fixtures, on first use): left on, every
#: bucket operation first asks GCS's Storage Control gRPC API for the bucket's layout, which no
#: emulator serves (60 s to give up). The docs tell users of an emulator to set the same.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

pytest_plugins = [
    "llm_pipeline_tests.fixtures.pipeline",
    "llm_pipeline_tests.fixtures.object_stores",
    "llm_pipeline_tests.fixtures.redis",
    "llm_pipeline_tests.fixtures.s3",
    "llm_pipeline_tests.fixtures.simulator",
]

#: Variables the project (and the object stores' clients) read; a developer's shell must not leak
#: them into tests.
_PROJECT_ENV_PREFIXES = (
    "ANTHROPIC_", "LLM_PIPELINE_", "DAGSTER_HOME", "AWS_", "AZURE_", "GOOGLE_", "STORAGE_EMULATOR_HOST",
    "FSSPEC_",
)  # fmt: skip
#: Without credentials, botocore would ask the instance metadata address (not on this machine) and
#: read ~/.aws: tests get their store's credentials from the `s3` fixture and nowhere else.
_NO_AMBIENT_AWS = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


#: Test packages whose package-scoped fixtures are too costly to set up on every worker: `--dist
#: loadfile` would send each of their files to whichever worker is free, and each worker would start
#: the package's servers (and run its backfill) again.
_ONE_WORKER_PACKAGES = ("llm_pipeline_tests/e2e/",)


#: Where each test's last measured seconds (setup + call + teardown) are kept between runs, in
#: pytest's cache (`.pytest_cache`), for the scheduler below.
_SECONDS_KEY = "llm_pipeline/test_seconds"


class _LoadFileKeepingPackagesTogether(LoadFileScheduling):
    """`--dist loadfile`, except that every file of a package in `_ONE_WORKER_PACKAGES` goes to one
    worker, so its package-scoped fixtures (the e2e web server, daemon and backfill) start once; and
    the unit that took longest last time is handed out first.

    xdist hands out files by number of tests, so a file of one or two tests that each start Dagster
    processes for a minute came last and kept one worker busy long after the other ran out of work.
    Longest first (by the seconds `pytest_sessionfinish` stored) lets the short files fill the gaps
    at the end. Units never measured count as 0 s and keep xdist's order among themselves.
    """

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        super().__init__(config, log)
        cache = getattr(config, "cache", None)  # None with `-p no:cacheprovider`
        seconds = cache.get(_SECONDS_KEY, {}) if cache is not None else {}
        self._seconds: dict[str, float] = seconds if isinstance(seconds, dict) else {}

    def _split_scope(self, nodeid: str) -> str:
        path = super()._split_scope(nodeid)
        return next((package for package in _ONE_WORKER_PACKAGES if path.startswith(package)), path)

    def _assign_work_unit(self, node: WorkerController) -> None:
        longest = max(self.workqueue, key=lambda scope: self._unit_seconds(self.workqueue[scope]))
        self.workqueue.move_to_end(longest, last=False)
        super()._assign_work_unit(node)

    def _unit_seconds(self, nodeids: dict[str, bool]) -> float:
        return sum(float(self._seconds.get(nodeid, 0.0)) for nodeid in nodeids)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadFileScheduling | None:
    if config.getvalue("dist") == "loadfile":
        return _LoadFileKeepingPackagesTogether(config, log)
    return None


#: Seconds per test of this session, summed over its phases (where the tests run: the xdist
#: controller receives every worker's reports through the same hook).
_session_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add up each test's phases, for the scheduler's longest-first order in the next run."""
    _session_seconds[report.nodeid] = _session_seconds.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Merge this session's seconds into the cache (the controller's, or a run without xdist)."""
    config = session.config
    cache = getattr(config, "cache", None)
    if hasattr(config, "workerinput") or cache is None or not _session_seconds:
        return
    stored = cache.get(_SECONDS_KEY, {})
    merged = {**(stored if isinstance(stored, dict) else {}), **_session_seconds}
    cache.set(_SECONDS_KEY, {nodeid: round(seconds, 2) for nodeid, seconds in merged.items()})


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Each test starts without the project's env vars and leaves the environment as it found it."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(_PROJECT_ENV_PREFIXES):
            del os.environ[name]
    os.environ.update(_NO_AMBIENT_AWS)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
