"""What a parallel backfill did, as the simulator saw it (see `_backfill.py` for how it is run).

The figures come from the simulator, never from the client: attempts, the 429s its own limiter
gave, and the timestamps of the successes, which give the busy period (first to last success).
The run windows come from the Dagster instance: when each day's process started and ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from llm_pipeline.claude import ClaudeSettings

__all__ = ["CLIENT_BURST_S", "BackfillOutcome", "BackfillScenario", "RunSummary"]

#: The bucket size the runs' limiter uses: the resource's default (LLM_PIPELINE_BURST_SECONDS is
#: not set for the runs). The simulator gets the same, as the API's bucket and ours should match.
CLIENT_BURST_S = ClaudeSettings().burst_seconds


@dataclass(frozen=True)
class BackfillScenario:
    """One backfill: which days, how much work, which limit, and where the shared state lives."""

    state: str
    days: tuple[date, ...]
    docs_per_day: int
    rpm: int
    #: Keys of the assets to backfill (the whole chain, as the UI's "materialize all" does).
    asset_keys: tuple[tuple[str, ...], ...]
    #: Simulated median service time of a call.
    latency_median_s: float = 0.03
    timeout_s: float = 240.0


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    partition: str | None
    status: str
    start: float | None
    end: float | None
    failure: str | None


@dataclass(frozen=True)
class BackfillOutcome:
    scenario: BackfillScenario
    backfill_id: str
    runs: tuple[RunSummary, ...]
    stats: dict[str, Any]
    warehouse: Path
    #: Wall-clock time of the simulator's t=0, to put run start/end on its success timeline.
    sim_started: float

    @property
    def limiter_429_share(self) -> float:
        """429s from the simulator's rate limiter (not injected faults) per attempt."""
        return self.stats["limiter_429"] / self.stats["attempts"] if self.stats["attempts"] else 0.0

    @property
    def busy_s(self) -> float:
        times = self.stats["success_times"]
        return max(times) - min(times) if len(times) > 1 else 0.0

    @property
    def rate_share(self) -> float:
        """Successes per busy second, as a share of the limit (the bucket's head start included)."""
        return (
            len(self.stats["success_times"]) / self.busy_s / (self.scenario.rpm / 60) if self.busy_s else 0.0
        )

    @property
    def steady_rate_share(self) -> float:
        """The same without the head start: (successes - one full bucket) per busy second / limit.

        The limit allows at most `bucket + rate x busy` successes, and the bucket (30 s of the
        limit) is a large part of a short test's work: counted in, it would flatter a limiter
        that uses the rate badly. Without it, 100% is the most any client can reach.
        """
        bucket = self.scenario.rpm / 60 * CLIENT_BURST_S
        if not self.busy_s:
            return 0.0
        return (len(self.stats["success_times"]) - bucket) / self.busy_s / (self.scenario.rpm / 60)

    @property
    def max_parallel_runs(self) -> int:
        """The most runs that were executing at the same instant (their processes overlapped)."""
        edges = sorted(
            [(r.start, 1) for r in self.runs if r.start and r.end]
            + [(r.end, -1) for r in self.runs if r.start and r.end]
        )
        best = current = 0
        for _, step in edges:
            current += step
            best = max(best, current)
        return best

    def summary(self) -> dict[str, Any]:
        return {
            "state": self.scenario.state
            if "://" in self.scenario.state or self.scenario.state == "memory"
            else "sqlite-dir",
            "runs": len(self.runs),
            "statuses": sorted({r.status for r in self.runs}),
            "max_parallel_runs": self.max_parallel_runs,
            "attempts": self.stats["attempts"],
            "successes": self.stats["successes"],
            "limiter_429": self.stats["limiter_429"],
            "limiter_429_share": round(self.limiter_429_share, 4),
            "busy_s": round(self.busy_s, 2),
            "rate_share": round(self.rate_share, 3),
            "steady_rate_share": round(self.steady_rate_share, 3),
            "duplicate_successes": self.stats["duplicate_successes"],
            # Each run's start and end, in seconds on the simulator's clock (successes: first-last).
            "run_windows": {
                r.partition: (round(r.start - self.sim_started, 1), round(r.end - self.sim_started, 1))
                for r in self.runs
                if r.start and r.end
            },
            "successes_first_last": (
                round(min(self.stats["success_times"]), 1) if self.stats["success_times"] else None,
                round(max(self.stats["success_times"]), 1) if self.stats["success_times"] else None,
            ),
            "failures": {r.partition: r.failure for r in self.runs if r.failure},
        }
