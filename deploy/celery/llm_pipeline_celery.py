"""The project's Definitions with each step executed by a Celery worker, on whichever machine.

For several machines without Kubernetes: the daemon's machine launches one run per partition, and
each run hands its steps to Celery workers through a Redis broker. The assets, checks, jobs,
schedules and resources are exactly those of `llm_pipeline.definitions`; only the executor differs.
The broker and result backend are read from the environment when a run starts, like everything else.
"""

from __future__ import annotations

import dagster as dg
from dagster_celery import celery_executor

# The module, not its `defs`: Dagster refuses a module with two Definitions objects at top level.
from llm_pipeline import definitions as single_machine

__all__ = ["defs"]

celery = celery_executor.configured(
    {
        "broker": {"env": "DAGSTER_CELERY_BROKER_URL"},
        "backend": {"env": "DAGSTER_CELERY_BACKEND_URL"},
    },
    name="celery",
)

defs = dg.Definitions(
    assets=single_machine.defs.assets,
    asset_checks=single_machine.defs.asset_checks,
    jobs=single_machine.defs.jobs,
    schedules=single_machine.defs.schedules,
    sensors=single_machine.defs.sensors,
    resources=single_machine.defs.resources,
    executor=celery,
)
