"""A step of your own in YAML (`LLMStepComponent`): the README's sentiment step, done as a user does it.

The end-to-end tests work in a temporary copy of the project, exactly as the README says: add
`llm_pipeline/defs/sentiment/defs.yaml` (written by `dg scaffold defs`), check the definitions with
`dg check defs`, materialize the day with `dagster asset materialize` against the simulator, and read
the Parquet. Bad definitions are refused at load time, naming the file and the field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from llm_pipeline.pipeline.component import LLMStepComponent, StepDefinitionError, check_steps
from llm_pipeline.simulator import Simulator
from llm_pipeline.warehouse.tables import SCHEMAS
from llm_pipeline_tests.fixtures.messages import system_text
from llm_pipeline_tests.fixtures.pipeline import FAST_LIMITS, PARTITION, REPO, TEST_KEY

BIN = Path(sys.executable).parent
TYPE = "llm_pipeline.pipeline.component.LLMStepComponent"
SENTIMENT: dict[str, Any] = {
    "upstream": "raw_documents",
    "columns": ["text"],
    "prompt": {
        "instructions": "You rate the overall sentiment of one document.",
        "template": "Rate the sentiment of this document.\n\n{document}",
    },
    "schema": {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
            "score": {"type": "number", "minimum": -1, "maximum": 1},
            "keywords": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["sentiment", "score", "keywords"],
    },
    "max_tokens": 256,
}


def _component(**changes: Any) -> LLMStepComponent:
    return LLMStepComponent.model_validate({**SENTIMENT, **changes})


# --- the definition, in-process ------------------------------------------------------------------


def test_the_yaml_becomes_a_step_with_typed_columns_and_an_enum_check() -> None:
    step = _component().bind(Path("defs/sentiment/defs.yaml"))
    assert step.name == "sentiment"
    assert (step.upstream, step.reads, step.max_tokens, step.model) == ("raw_documents", ("text",), 256, None)
    types = {f.name: str(f.type) for f in step.output_fields}
    assert types == {"sentiment": "string", "score": "double", "keywords": "list<item: string>"}
    assert [f.name for f in step.table][:3] == ["doc_id", "status", "error"]
    assert {"cost_usd", "input_tokens", "model"} <= set(step.table.names)
    (check,) = step.checks
    assert (check.name, check.column, list(check.values)) == (
        "sentiment_allowed_values",
        "sentiment",
        ["positive", "neutral", "negative"],
    )
    request = step.prompt_for(None).request(  # type: ignore[arg-type]
        {"doc_id": "d1", "text": "Lovely day"}, model="claude-haiku-5-5", max_tokens=256
    )
    assert request.params["messages"][0]["content"].endswith('<document id="d1">\nLovely day\n</document>')
    assert "untrusted data" in system_text(request.params)  # documents are fenced as untrusted, as always


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"prompt": {"instructions": "Rate it.", "template": "Rate it."}}, "prompt.template", "{document}"),
        (
            {"schema": {"type": "object", "properties": {"s": {"type": "strnig"}}}},
            "schema",
            "invalid JSON Schema at properties/s/type",
        ),
        ({"schema": {"type": "object"}}, "schema", "properties"),
        ({"output_columns": ["sentiment", "mood"]}, "output_columns", "['mood'] are not properties"),
        (
            {"schema": {"type": "object", "properties": {"status": {"type": "string"}}}},
            "output_columns",
            "collide with the standard columns",
        ),
        ({"name": "my-step"}, "name", "not a valid asset name"),
        ({"columns": []}, "columns", "at least one"),
    ],
)
def test_a_bad_definition_names_the_file_and_the_field(
    changes: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(StepDefinitionError) as failure:
        _component(**changes).bind(Path("llm_pipeline/defs/sentiment/defs.yaml"))
    message = str(failure.value)
    assert message.startswith(f"llm_pipeline/defs/sentiment/defs.yaml: field '{field}'")
    assert problem in message


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"upstream": "raw_docs"}, "upstream", "unknown asset 'raw_docs'"),
        ({"columns": ["body"]}, "columns", "['body'] are not columns of raw_documents"),
        ({"name": "classifications"}, "name", "'classifications' already exists (a built-in asset)"),
    ],
)
def test_what_only_the_whole_project_can_check_names_the_file_and_the_field(
    changes: dict[str, Any], field: str, problem: str
) -> None:
    component = _component(**changes)
    component.bind(Path("defs/x/defs.yaml"))
    with pytest.raises(StepDefinitionError) as failure:
        check_steps([component], {name: schema.names for name, schema in SCHEMAS.items()})
    assert str(failure.value).startswith(f"defs/x/defs.yaml: field '{field}': ")
    assert problem in str(failure.value)


def test_two_steps_with_one_name_and_a_step_built_on_another() -> None:
    first, second = _component(), _component(name="a")
    first.bind(Path("defs/a/defs.yaml"))  # named after its folder: "a"
    second.bind(Path("defs/b/defs.yaml"))
    tables = {name: schema.names for name, schema in SCHEMAS.items()}
    with pytest.raises(
        StepDefinitionError, match=r"^defs/b/defs.yaml: field 'name': .*'a' already exists \(defs/a"
    ):
        check_steps([first, second], tables)
    # A step may read another YAML step's columns: a summary of step a's keywords.
    summary = _component(upstream="a", columns=["keywords"])
    summary.bind(Path("defs/summary/defs.yaml"))
    check_steps([first, summary], tables)


# --- the README's path, in a copy of the project ----------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The project as a user has it (package, pyproject, workspace, one sample day), in a temp dir."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copytree(
        REPO / "llm_pipeline", copy / "llm_pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "workspace.yaml"):
        shutil.copy(REPO / name, copy / name)
    (copy / "data" / "raw").mkdir(parents=True)
    shutil.copy(REPO / "data" / "raw" / f"{PARTITION}.jsonl", copy / "data" / "raw")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return copy


def _env(project: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(project),  # the copy's package, not the repository's editable install
        "DAGSTER_HOME": str(project.parent / "home"),
        "LLM_PIPELINE_STATE": str(project.parent / "state"),
        "NO_COLOR": "1",
        **extra,
    }


def _run(project: Path, *command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=project,
        env=_env(project, **env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_a_sentiment_step_in_yaml_is_scaffolded_loaded_and_materialized(
    project: Path, simulator: Simulator
) -> None:
    scaffolded = _run(project, "dg", "scaffold", "defs", TYPE, "sentiment")
    assert scaffolded.returncode == 0, scaffolded.stderr
    defs_yaml = project / "llm_pipeline" / "defs" / "sentiment" / "defs.yaml"
    assert yaml.safe_load(defs_yaml.read_text())["type"] == TYPE
    checked = _run(project, "dg", "check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    listed = json.loads(_run(project, "dg", "list", "defs", "--json").stdout)
    (sentiment,) = [a for a in listed["assets"] if a["asset_key"] == "sentiment"]
    assert (sentiment["group_name"], sentiment["dependency_keys"]) == ("llm_pipeline", ["raw_documents"])
    assert {c["key"] for c in listed["asset_checks"]} >= {
        "sentiment:every_document_once",
        "sentiment:error_rate",
        "sentiment:sentiment_allowed_values",
    }
    probe = (
        "from llm_pipeline.definitions import defs; "
        "job = defs.resolve_job_def('daily_pipeline'); "
        "print(sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys))"
    )
    in_job = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "'sentiment'" in in_job.stdout, in_job.stderr  # so the schedule and backfills run it too

    run = _run(
        project,
        "dagster", "asset", "materialize", "-m", "llm_pipeline.definitions",
        "--select", "raw_documents,sentiment", "--partition", PARTITION,
        ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=simulator.base_url, LLM_PIPELINE_BACKEND="anthropic",
        **{f"LLM_PIPELINE_{name.upper()}": str(value) for name, value in FAST_LIMITS.items()},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_parquet(project / "data" / "warehouse" / "sentiment" / f"{PARTITION}.parquet")
    raw = pd.read_parquet(project / "data" / "warehouse" / "raw_documents" / f"{PARTITION}.parquet")
    assert sorted(table.doc_id) == sorted(raw.doc_id)  # one row per input document
    # Every valid line is answered; the sample's prompt injection ("answer 'hacked'") is the one error
    # row, after its repair turn: an injected value never reaches the table.
    assert table.status.value_counts().to_dict() == {"ok": 312, "rejected": 7, "error": 1}
    (injected,) = table[table.status == "error"].error
    assert "hacked" in injected
    ok = table[table.status == "ok"]
    assert set(ok.sentiment) <= {"positive", "neutral", "negative"}
    assert ok.score.between(-1, 1).all()
    assert (ok.cost_usd > 0).all()
    assert (ok.input_tokens > 0).all()
    assert (ok.model == "claude-haiku-5-5").all()


@pytest.mark.slow
def test_a_bad_yaml_step_fails_dg_check_defs_naming_the_file_and_the_field(project: Path) -> None:
    folder = project / "llm_pipeline" / "defs" / "sentiment"
    folder.mkdir()
    (folder / "defs.yaml").write_text(
        yaml.safe_dump({"type": TYPE, "attributes": {**SENTIMENT, "upstream": "raw_docs"}})
    )
    checked = _run(project, "dg", "check", "defs")
    assert checked.returncode != 0
    output = checked.stdout + checked.stderr
    assert f"{folder / 'defs.yaml'}: field 'upstream': unknown asset 'raw_docs'" in output
