"""`llm-pipeline demo`: every sample day through the whole chain, on the instance `make ui` shows.

It executes the `daily_pipeline` job once per day found in `<data dir>/raw/`, in-process, against
the persistent Dagster instance (`$DAGSTER_HOME`, the repository's `.dagster_home` under make), so
the runs, materializations and check results are there to inspect in the web UI afterwards.
Without `ANTHROPIC_API_KEY` the resource starts the embedded simulator: no key, no network.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import dagster as dg

from llm_pipeline.settings import DATA_DIR_ENV, resolve_data_dir, setting
from llm_pipeline.warehouse.files import partition_path
from llm_pipeline.warehouse.tables import SCHEMAS

__all__ = ["run"]

_TABLES = tuple(SCHEMAS)  # the chain in order: raw_documents first, then the three LLM steps
#: Progress lines and warnings on the console; Dagster's per-event DEBUG lines stay in the event log.
_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run(
    *, data_dir: str | None = None, partitions: Sequence[str] | None = None, out: TextIO | None = None
) -> int:
    """Materialize every asset for every (or the given) sample day; 0 when every run succeeded."""
    out = out or sys.stdout
    if data_dir:
        os.environ[DATA_DIR_ENV] = data_dir
    root = resolve_data_dir()
    days = list(partitions or sorted(path.stem for path in (root / "raw").glob("*.jsonl")))
    if not days:
        print(f"no input: {root / 'raw'} has no YYYY-MM-DD.jsonl files", file=out)
        return 1
    os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)

    from llm_pipeline.definitions import defs  # after the environment is settled

    job = defs.resolve_job_def("daily_pipeline")
    keyed = setting(None, "ANTHROPIC_API_KEY", str, "")
    backend = "anthropic" if keyed else "simulator (no ANTHROPIC_API_KEY set)"
    print(f"llm_pipeline demo: {len(days)} day(s) from {root / 'raw'}, backend {backend}", file=out)
    print(f"Dagster instance: {os.environ['DAGSTER_HOME']}\n", file=out)

    rows, ok = [], True
    with dg.DagsterInstance.get() as instance:
        for day in days:
            started = time.monotonic()
            result = job.execute_in_process(
                run_config=_RUN_CONFIG, partition_key=day, instance=instance, raise_on_error=False
            )
            ok &= result.success
            rows.append(_summary(day, result, time.monotonic() - started))
    _print_table(rows, out)
    print("\nParquet files:", file=out)
    for table in _TABLES:
        for day in days:
            path = partition_path(root, [table], day)
            print(f"  {path}{'' if path.exists() else '  (missing)'}", file=out)
    print("\nInspect runs, lineage, metadata and checks: make ui  (http://127.0.0.1:3000)", file=out)
    return 0 if ok else 1


def _summary(day: str, result: dg.ExecuteInProcessResult, seconds: float) -> dict[str, Any]:
    meta = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    checks = result.get_asset_check_evaluations()

    def value(asset: str, key: str) -> Any:
        entry = meta.get(asset, {}).get(key)
        return getattr(entry, "value", entry)

    cost = sum(value(asset, "cost_usd") or 0.0 for asset in _TABLES[1:])
    return {
        "day": day,
        "run": "ok" if result.success else "FAILED",
        "documents": value("raw_documents", "row_count"),
        "ok": value("classifications", "documents_ok"),
        "error": sum(value(asset, "documents_error") or 0 for asset in _TABLES[1:]),
        "rejected": value("raw_documents", "rejected"),
        "calls": sum(value(asset, "calls") or 0 for asset in _TABLES[1:]),
        "ledger hits": sum(value(asset, "ledger_hits") or 0 for asset in _TABLES[1:]),
        "cost USD": f"{cost:.4f}",
        "checks": f"{sum(c.passed for c in checks)}/{len(checks)}",
        "seconds": f"{seconds:.1f}",
    }


def _print_table(rows: list[dict[str, Any]], out: TextIO) -> None:
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns), file=out)
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns), file=out)
