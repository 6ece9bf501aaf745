"""`llm-pipeline`: the demo, the ledger upkeep commands, and the learned rate limits."""

from __future__ import annotations

import io
import os
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from llm_pipeline.definitions import pipeline_assets
from llm_pipeline.simulator import Limits
from llm_pipeline.tools.cli import main
from llm_pipeline.tools.demo import run as run_demo
from llm_pipeline.tools.ledger_cli import parse_age
from llm_pipeline_tests.fixtures.pipeline import REPO, PipelineHarness
from llm_pipeline_tests.fixtures.s3 import S3Store
from llm_pipeline_tests.fixtures.servers import RedisServer
from llm_pipeline_tests.fixtures.system_deps import REDIS_SERVER, find


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("3600s", timedelta(seconds=3600)),
        ("2w", timedelta(weeks=2)),
        ("7", timedelta(days=7)),
        (" 1.5d ", timedelta(days=1.5)),
    ],
)
def test_parse_age(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "d", "-1d", "3y", "ten days"])
def test_parse_age_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="not an age"):
        parse_age(text)


def test_ledger_stats_and_prune_on_the_state_a_run_left(
    pipeline: PipelineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.materialize()
    calls = pipeline.simulator.control.stats()["successes"]

    assert main(["ledger", "stats", "--state", str(pipeline.state_dir)]) == 0
    assert f"answers stored   {calls}" in capsys.readouterr().out

    assert main(["ledger", "prune", "--older-than", "1d", "--state", str(pipeline.state_dir)]) == 0
    assert "removed 0 answer(s)" in capsys.readouterr().out
    os.environ["LLM_PIPELINE_STATE"] = str(pipeline.state_dir)  # the location a run would use
    assert main(["ledger", "prune", "--older-than", "0s"]) == 0
    assert f"removed {calls} answer(s)" in capsys.readouterr().out
    main(["ledger", "stats"])
    assert "answers stored   0" in capsys.readouterr().out


def test_ledger_delete_by_step_and_the_next_run_asks_for_exactly_those_again(
    pipeline: PipelineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.materialize()
    before = pipeline.simulator.control.stats()["successes"]
    classified = int((pipeline.table("classifications").status == "ok").sum())
    state = ["--state", str(pipeline.state_dir)]
    assert main(["ledger", "delete", *state]) == 2, "nothing selected is a usage error, not 'delete all'"
    assert main(["ledger", "delete", "--step", "classifications", *state]) == 0
    out = capsys.readouterr().out
    assert f"removed {classified} answer(s)" in out
    result = pipeline.materialize()
    assert result.success
    assert pipeline.simulator.control.stats()["successes"] - before == classified
    assert main(["ledger", "delete", "--key", "nope", "--model", "claude-none", *state]) == 0
    assert "removed 0 answer(s)" in capsys.readouterr().out


def test_ledger_commands_never_print_a_redis_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = find(REDIS_SERVER)
    assert binary is not None, "redis-server is missing: run `make test`"
    with RedisServer(binary, tmp_path, password="pw-in-the-url") as server:
        os.environ["LLM_PIPELINE_SPOOL_DIR"] = str(tmp_path / "spool")
        for command in (
            ["stats"],
            ["prune", "--older-than", "30d"],
            ["delete", "--step", "x"],
            ["accept-reset"],
        ):
            assert main(["ledger", *command, "--state", server.url]) == 0
        out = capsys.readouterr().out
    assert f"redis://:***@127.0.0.1:{server.port}/0" in out
    assert "pw-in-the-url" not in out


def test_limits_shows_what_a_run_learned_the_caps_here_and_the_limits_in_effect(
    pipeline: PipelineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(pipeline.state_dir)
    assert main(["limits", "--state", state]) == 0
    assert "nothing learned yet" in capsys.readouterr().out
    pipeline.simulator.control.configure(limits=Limits(rpm=6_000, otpm=1_200_000, burst_seconds=10.0))
    assert pipeline.materialize(assets=pipeline_assets[:2]).success

    os.environ.update(LLM_PIPELINE_OTPM="500000", LLM_PIPELINE_LIMIT_SHARE="0.5")
    assert main(["limits", "--state", state]) == 0
    out = capsys.readouterr().out
    assert f"rate limits learned at {state}" in out
    assert "configured here: otpm <= 500,000; share 0.5 of the learned limits" in out
    assert "127.0.0.1  claude-haiku-5-5" in out
    assert re.search(r"learned    rpm 6,000  itpm not limited  otpm 1,200,000  burst (9\.\d|10\.0) s", out)
    assert "in effect  rpm 3,000 (headers), itpm not limited, otpm 500,000 (configured cap)" in out
    assert "seen       20" in out


def test_limits_names_a_bad_variable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    os.environ["LLM_PIPELINE_LIMIT_SHARE"] = "2"
    assert main(["limits", "--state", str(tmp_path)]) == 2
    assert "LLM_PIPELINE_LIMIT_SHARE='2' must be a fraction in (0, 1]" in capsys.readouterr().err


def test_a_bad_age_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["ledger", "prune", "--older-than", "soon"])
    assert exit_info.value.code == 2
    assert "not an age: 'soon'" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_materializes_every_sample_day_and_prints_the_paths(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    for day in ("2026-11-20", "2026-11-21"):
        shutil.copy(REPO / "data" / "raw" / f"{day}.jsonl", data / "raw")
    os.environ.update(DAGSTER_HOME=str(tmp_path / "home"), LLM_PIPELINE_STATE=str(tmp_path / "state"))
    out = io.StringIO()

    assert run_demo(data_dir=str(data), out=out) == 0

    printed = out.getvalue()
    assert "backend simulator (no ANTHROPIC_API_KEY set)" in printed
    for day in ("2026-11-20", "2026-11-21"):
        assert f"{day}  ok " in printed
        for table in ("raw_documents", "extracted_entities", "classifications", "corpus_report"):
            path = data / "warehouse" / table / f"{day}.parquet"
            assert path.exists()
            assert str(path) in printed
    assert "7/7" in printed  # every check passed
    assert (tmp_path / "home" / "history").is_dir()  # runs recorded on the persistent instance


@pytest.mark.slow
def test_demo_finds_its_days_on_s3_and_prints_the_urls(tmp_path: Path, s3: S3Store) -> None:
    s3.upload(REPO / "data" / "raw" / "2026-11-20.jsonl", "raw", "2026-11-20.jsonl")
    os.environ.update(DAGSTER_HOME=str(tmp_path / "home"), LLM_PIPELINE_STATE=str(tmp_path / "state"))
    out = io.StringIO()

    assert run_demo(data_dir=s3.url, out=out) == 0

    printed = out.getvalue()
    assert f"1 day(s) from {s3.url}/raw" in printed
    for table in ("raw_documents", "extracted_entities", "classifications", "corpus_report"):
        assert f"  {s3.url}/warehouse/{table}/2026-11-20.parquet\n" in printed  # not "(missing)"
