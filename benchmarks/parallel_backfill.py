"""A backfill of several days in parallel processes against one rate limit, with and without sharing.

The scenario of `llm_pipeline_tests/pipeline/test_parallel_backfill.py` (issue 6), without its assertions and
with its sizes as options: a real asset backfill through `dagster-daemon`, one OS process per day,
one spawned simulator whose request limit equals the runs' limit. For each `LLM_PIPELINE_STATE`
it prints one JSON line with what the simulator saw: attempts, 429s from its limiter, the busy
period (first to last success), the rate over it as a share of the limit (`rate_share`, and
`steady_rate_share` without the bucket's 30 s head start), and when each day's run ran.

    python benchmarks/parallel_backfill.py                       # sqlite, redis, memory
    python benchmarks/parallel_backfill.py --states memory --docs 300 --rpm 3000

`redis` starts a throwaway `redis-server` (from PATH) on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the harness lives with the tests, which are not installed

from llm_pipeline.definitions import defs  # noqa: E402
from llm_pipeline_tests.fixtures.backfill import BackfillScenario, run_backfill  # noqa: E402
from llm_pipeline_tests.fixtures.servers import run_redis_server  # noqa: E402


def _redis_server(stack: contextlib.ExitStack, workdir: Path) -> str:
    """A throwaway redis-server, stopped when `stack` closes; the script exits if it cannot start one.

    Only starting it is guarded: a failure inside the backfill must keep its own traceback.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH (apt-get install redis-server)")
    try:
        return stack.enter_context(run_redis_server(binary, workdir, start_timeout_s=10.0))
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--states", nargs="+", default=["sqlite", "redis", "memory"])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--docs", type=int, default=150, help="documents per day (two calls each)")
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--burst-s", type=float, default=30.0, help="simulator bucket (s)")
    args = parser.parse_args(argv)

    days = tuple(date(2026, 11, 20) + timedelta(days=offset) for offset in range(args.days))
    keys = tuple(
        tuple(key.path) for key in defs.resolve_job_def("daily_pipeline").asset_layer.selected_asset_keys
    )
    for state in args.states:
        with tempfile.TemporaryDirectory(prefix="parallel_backfill_") as tmp, contextlib.ExitStack() as stack:
            spec = {"sqlite": str(Path(tmp) / "llm_state"), "memory": "memory"}.get(state)
            if state == "redis":
                spec = _redis_server(stack, Path(tmp))
            if spec is None:
                raise SystemExit(f"unknown state {state!r}: sqlite, redis or memory")
            scenario = BackfillScenario(
                state=spec,
                days=days,
                docs_per_day=args.docs,
                rpm=args.rpm,
                burst_s=args.burst_s,
                asset_keys=keys,
            )
            started = time.monotonic()
            outcome = run_backfill(Path(tmp), scenario)
            summary = {"scenario": state, **outcome.summary(), "wall_s": round(time.monotonic() - started, 1)}
            print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
