"""Shared fixtures. Fixture families live in `_fixtures/` and are registered here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling

#: gcsfs reads this once, when it is imported (by the object-store fixtures, below): left on, every
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


class _LoadFileKeepingPackagesTogether(LoadFileScheduling):
    """`--dist loadfile`, except that every file of a package in `_ONE_WORKER_PACKAGES` goes to one
    worker, so its package-scoped fixtures (the e2e web server, daemon and backfill) start once."""

    def _split_scope(self, nodeid: str) -> str:
        path = super()._split_scope(nodeid)
        return next((package for package in _ONE_WORKER_PACKAGES if path.startswith(package)), path)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadFileScheduling | None:
    if config.getvalue("dist") == "loadfile":
        return _LoadFileKeepingPackagesTogether(config, log)
    return None


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
