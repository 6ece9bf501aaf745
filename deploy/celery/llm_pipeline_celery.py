"""The project's Definitions with each step executed by a Celery worker, on whichever machine.

For several machines without Kubernetes: the daemon's machine launches one run per partition, and
each run hands its steps to Celery workers through a Redis broker. The assets, checks, jobs,
schedules and resources are exactly those of `llm_pipeline.definitions`; only the executor differs.
The broker and result backend are read from the environment when a run starts, like everything else.
"""

from __future__ import annotations

import dagster as dg
from dagster_celery import celery_executor

from llm_pipeline.definitions import defs as single_machine

__all__ = ["defs"]

celery = celery_executor.configured(
    {
        "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
        "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
    },
    name="celery",
)

defs = dg.Definitions(
    assets=single_machine.assets,
    asset_checks=single_machine.asset_checks,
    jobs=single_machine.jobs,
    schedules=single_machine.schedules,
    sensors=single_machine.sensors,
    resources=single_machine.resources,
    executor=celery,
)
