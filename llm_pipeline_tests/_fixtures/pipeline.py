"""Materialize the real pipeline in-process against the simulator fixture, over the real-key path.

The resource is configured exactly as a user with a key would configure it (`backend=anthropic`,
an API key, `ANTHROPIC_BASE_URL` = the simulator), so these tests exercise the production code path;
only the base URL differs. Limits are set high so the client's limiter never slows a test down,
unless a test asks for specific limits.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from llm_pipeline.checks import build_checks
from llm_pipeline.config import PipelineConfig
from llm_pipeline.definitions import pipeline_assets
from llm_pipeline.io_managers import ParquetIOManager
from llm_pipeline.resources import ClaudeResource
from llm_pipeline.simulator import Simulator
from llm_pipeline.warehouse import partition_path

REPO = Path(__file__).resolve().parents[2]
PARTITION = "2026-11-20"
TEST_KEY = "sk-sim-test"
#: Far above what a test sends: the client's own pacing stays out of the way.
FAST_LIMITS: dict[str, Any] = {"rpm": 1_000_000, "itpm": 1_000_000_000, "otpm": 100_000_000}


@dataclass
class PipelineHarness:
    """A data dir with sample input, a state dir, and the simulator the runs talk to."""

    data_dir: Path
    state_dir: Path
    simulator: Simulator
    instance: dg.DagsterInstance

    def claude(self, **overrides: Any) -> ClaudeResource:
        config: dict[str, Any] = {
            "backend": "anthropic",
            "api_key": TEST_KEY,
            "base_url": self.simulator.base_url,
            "state": str(self.state_dir),
            "max_concurrency": 16,
            "timeout_s": 10.0,
            **FAST_LIMITS,
            **overrides,
        }
        return ClaudeResource(**config)

    def materialize(
        self,
        partition: str = PARTITION,
        *,
        assets: Sequence[dg.AssetsDefinition] = pipeline_assets,
        selection: Sequence[str] | None = None,
        claude: ClaudeResource | None = None,
        **claude_overrides: Any,
    ) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [*assets, *build_checks(list(assets))],
            partition_key=partition,
            selection=selection,
            resources={
                "io_manager": ParquetIOManager(data_dir=str(self.data_dir)),
                "pipeline_config": PipelineConfig(data_dir=str(self.data_dir)),
                "claude": claude or self.claude(**claude_overrides),
            },
            instance=self.instance,
            raise_on_error=False,
        )

    def log_messages(self, result: dg.ExecuteInProcessResult) -> list[str]:
        """Every message of the run's log, user log lines (resource setup, progress) included."""
        return [entry.user_message for entry in self.instance.all_logs(result.run_id)]

    def path(self, asset: str, partition: str = PARTITION) -> Path:
        return partition_path(self.data_dir, [asset], partition)

    def table(self, asset: str, partition: str = PARTITION) -> pd.DataFrame:
        return pd.read_parquet(self.path(asset, partition))


@pytest.fixture
def pipeline(tmp_path: Path, simulator: Simulator) -> Iterator[PipelineHarness]:
    """Sample day 2026-11-20 (320 lines, 7 of them bad) in a fresh data dir, fresh ledger state."""
    data_dir = tmp_path / "data"
    (data_dir / "raw").mkdir(parents=True)
    shutil.copy(REPO / "data" / "raw" / f"{PARTITION}.jsonl", data_dir / "raw")
    with dg.DagsterInstance.ephemeral() as instance:
        yield PipelineHarness(
            data_dir=data_dir, state_dir=tmp_path / "state", simulator=simulator, instance=instance
        )


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """Every step failure's message and its error's text, for asserting what a person would read."""
    messages = []
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            messages.append(f"{event.message} {data.error.message if data and data.error else ''}")
    return messages


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """The latest materialization's metadata of `asset`, as plain values."""
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    return {key: getattr(value, "value", value) for key, value in event.materialization.metadata.items()}
