"""The Dagster CLI, as a user runs it: validate the workspace, materialize one partition."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def _env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    return {**os.environ, "DAGSTER_HOME": str(home), "LLM_PIPELINE_DATA_DIR": str(tmp_path / "data")}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DAGSTER, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_dagster_definitions_validate(tmp_path: Path) -> None:
    result = _run(["definitions", "validate", "-w", "workspace.yaml"], _env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


@pytest.mark.slow
def test_dagster_asset_materialize_one_partition(tmp_path: Path) -> None:
    env = _env(tmp_path)
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(REPO / "data" / "raw" / "2026-11-20.jsonl", raw)
    result = _run(
        [
            "asset",
            "materialize",
            "-m",
            "llm_pipeline.definitions",
            "--select",
            "raw_documents",
            "--partition",
            "2026-11-20",
        ],
        env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = tmp_path / "data" / "warehouse" / "raw_documents" / "2026-11-20.parquet"
    assert pq.read_metadata(output).num_rows == 320
    assert (
        len(list((tmp_path / "dagster_home" / "history" / "runs").glob("*-*.db"))) == 1
    )  # one run, recorded
