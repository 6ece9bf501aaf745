"""Shared fixtures. Fixture families live in `_fixtures/` and are registered here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

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
