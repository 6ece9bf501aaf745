"""Dagster's `dg` CLI works on the project as it is ([tool.dg] in pyproject.toml)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DG = Path(sys.executable).parent / "dg"
ASSETS = {"raw_documents", "extracted_entities", "classifications", "corpus_report"}
CHECKS = {
    f"{table}:{check}"
    for table in ("extracted_entities", "classifications", "corpus_report")
    for check in ("every_document_once", "error_rate")
} | {"classifications:labels_in_taxonomy"}

pytestmark = pytest.mark.slow


def _dg(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (home / "dagster.yaml").touch()
    env = {**os.environ, "DAGSTER_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(
        [str(DG), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_dg_check_defs_loads_the_definitions(tmp_path: Path) -> None:
    result = _dg(tmp_path, "check", "defs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_dg_list_defs_shows_the_assets_checks_job_and_schedule(tmp_path: Path) -> None:
    result = _dg(tmp_path, "list", "defs", "--json")
    assert result.returncode == 0, result.stderr
    listed: dict[str, Any] = json.loads(result.stdout)
    assert {a["asset_key"] for a in listed["assets"]} >= ASSETS
    assert {c["key"] for c in listed["asset_checks"]} >= CHECKS
    assert {j["name"] for j in listed["jobs"]} >= {"daily_pipeline"}
    (schedule,) = [s for s in listed["schedules"] if s["name"] == "nightly_daily_pipeline"]
    assert schedule["cron_schedule"] == "0 2 * * *"
    assert {r["name"] for r in listed["resources"]} >= {"io_manager", "pipeline_config", "claude"}
