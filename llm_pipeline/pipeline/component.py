"""`LLMStepComponent`: a step of your own, declared in `llm_pipeline/defs/<step>/defs.yaml`.

    type: llm_pipeline.pipeline.component.LLMStepComponent
    attributes:
      upstream: raw_documents            # the asset whose ok rows are the documents
      columns: [text]                    # the upstream columns the prompt reads
      prompt:
        instructions: You rate the sentiment of one document ...
        template: "Rate the sentiment of this document.\n\n{document}"
      schema: {type: object, properties: {sentiment: {enum: [positive, neutral, negative]}, ...}}
      output_columns: [sentiment, score]  # default: every property of the schema
      model: claude-haiku-5-5            # default: the `claude` resource's model
      max_tokens: 256

The folder name is the asset's name (or `name:`). The component builds an `LLMStep` and hands it to
the step machine (`pipeline/step.py`), so the step gets every guarantee of the built-in ones: one row
per input document with status and error, the shared limiter, ledger, breaker and fallback, one
repair turn on a bad answer, cost columns, progress, batch mode and the blocking checks (plus an
allowed-values check per `enum` output column). It joins the `llm_pipeline` group, so the daily
job, the nightly schedule and backfills include it.

Column types follow the schema: string, number (double), integer, boolean, arrays of those; any
other value (an object, a mixed array) is stored as JSON text. What can be checked without the
rest of the project fails here, naming the file and the field; the upstream asset and columns are
checked against the whole project in `definitions.py` (`check_steps`).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster.components import Scaffolder, ScaffoldRequest
from pydantic import Field, PrivateAttr

from llm_pipeline.pipeline.checks import AllowedValues
from llm_pipeline.pipeline.step import LLMStep, build_step
from llm_pipeline.prompts.fencing import UNTRUSTED_NOTICE
from llm_pipeline.prompts.step_prompt import DOCUMENT, Fence, PromptError, StepPrompt

__all__ = ["LLMStepComponent", "LLMStepScaffolder", "StepDefinitionError", "check_steps"]

_SCALARS: Mapping[str, pa.DataType] = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
}


class StepDefinitionError(ValueError):
    """A step's definition is wrong; the message names the file and the field."""


class PromptAttributes(dg.Model):
    """The prompt: shared instructions (the system prompt) and the per-document template."""

    instructions: str = Field(description="What the model is asked to do, the same for every document.")
    template: str = Field(
        description="The user turn for one document; {document} is replaced by the document, fenced."
    )


class _Column:
    """One output column: its Arrow field and how an answer value becomes a cell."""

    def __init__(self, name: str, prop: Mapping[str, Any]) -> None:
        kind = prop.get("type") or _enum_type(prop.get("enum"))
        item = prop.get("items", {}).get("type") if isinstance(prop.get("items"), Mapping) else None
        if kind in _SCALARS:
            self.field, self.convert = pa.field(name, _SCALARS[kind]), _same
        elif kind == "array" and item in _SCALARS:
            self.field, self.convert = pa.field(name, pa.list_(_SCALARS[item])), _same
        else:  # an object, a union, a nested array: kept whole, as JSON text
            self.field, self.convert = pa.field(name, pa.string()), _as_json
        self.enum: list[Any] | None = list(prop["enum"]) if isinstance(prop.get("enum"), list) else None


class LLMStepScaffolder(Scaffolder):
    """`dg scaffold defs LLMStepComponent <name>`: a working sentiment step to start from."""

    def scaffold(self, request: ScaffoldRequest) -> None:
        request.target_path.mkdir(parents=True, exist_ok=True)
        (request.target_path / "defs.yaml").write_text(_STARTER.format(type_name=request.type_name))


_STARTER = textwrap.dedent(
    """\
    # An LLM step over each day's documents; edit the prompt and the schema, then
    # `dg check defs`, and materialize it (web UI, or `dagster asset materialize`).
    type: {type_name}
    attributes:
      upstream: raw_documents
      columns: [text]
      prompt:
        instructions: >-
          You rate the overall sentiment of one document: positive, neutral or negative,
          with a score from -1 (very negative) to 1 (very positive).
        template: "Rate the sentiment of this document.\\n\\n{{document}}"
      schema:
        type: object
        properties:
          sentiment: {{type: string, enum: [positive, neutral, negative]}}
          score: {{type: number, minimum: -1, maximum: 1}}
        required: [sentiment, score]
      max_tokens: 256
    """
)


@dg.scaffold_with(LLMStepScaffolder)
class LLMStepComponent(dg.Component, dg.Resolvable, dg.Model):
    """An LLM step over a day's documents, built by the pipeline's step machine (see module doc)."""

    upstream: str = Field(description="The asset whose rows are the documents (e.g. raw_documents).")
    columns: list[str] = Field(description="The upstream columns the prompt reads (e.g. [text]).")
    prompt: PromptAttributes
    answer_schema: dict[str, Any] = Field(
        alias="schema", description="JSON Schema of the answer (an object); it is validated on every answer."
    )
    output_columns: list[str] | None = Field(
        default=None, description="Properties of the answer that become columns; default: all of them."
    )
    name: str | None = Field(default=None, description="The asset's name; default: the folder's name.")
    description: str | None = Field(default=None, description="The asset's description in the UI.")
    step_model: str | None = Field(
        default=None, alias="model", description="This step's model; default: the claude resource's."
    )
    max_tokens: int = Field(default=1024, ge=1, description="max_tokens of each call.")

    _source: Path | None = PrivateAttr(default=None)
    _step: LLMStep | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The defs.yaml this step came from (once built)."""
        return self._source

    @property
    def step(self) -> LLMStep:
        if self._step is None:
            raise RuntimeError("the component has not been built yet")
        return self._step

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        asset, checks = build_step(self.bind(context.path / "defs.yaml"))
        return dg.Definitions(assets=[asset], asset_checks=checks)

    def bind(self, source: Path) -> LLMStep:
        """The `LLMStep` the file at `source` declares; a bad field raises `StepDefinitionError`
        naming the file and the field."""
        self._source = source
        self._step = self._to_step(source.parent.name)
        return self._step

    def _to_step(self, folder: str) -> LLMStep:
        name = self.name or folder
        if not name.isidentifier():
            self._fail("name", f"{name!r} is not a valid asset name (letters, digits and _)")
        columns = self._columns()
        prompt = self._prompt(name, columns)
        try:
            return LLMStep(
                name=name,
                description=self.description or f"{name}: an LLM step defined in YAML ({folder}/defs.yaml).",
                upstream=self.upstream,
                reads=tuple(self.columns),
                prompt=prompt,
                output_fields=tuple(c.field for c in columns.values()),
                model=self.step_model,
                max_tokens=self.max_tokens,
                checks=tuple(
                    AllowedValues(name=f"{n}_allowed_values", column=n, values=c.enum)
                    for n, c in columns.items()
                    if c.enum
                ),
            )
        except ValueError as exc:
            self._fail("output_columns", str(exc))

    def _prompt(self, name: str, columns: Mapping[str, _Column]) -> StepPrompt:
        if not self.columns:
            self._fail("columns", "list at least one upstream column for the prompt to read")
        template = self.prompt.template
        if "{" + DOCUMENT + "}" not in template:
            self._fail(
                "prompt.template", f"has no {{{DOCUMENT}}} placeholder: the request needs the document"
            )
        try:
            return StepPrompt.from_json_schema(
                self.answer_schema,
                step=name,
                instructions=f"{self.prompt.instructions.strip()} {UNTRUSTED_NOTICE}",
                template=template,
                fences={DOCUMENT: Fence(tuple(self.columns))},
                to_columns=lambda answer: {n: c.convert(answer.get(n)) for n, c in columns.items()},
            )
        except PromptError as exc:
            field = "schema" if "Schema" in str(exc) else "prompt"
            self._fail(field, str(exc))

    def _columns(self) -> dict[str, _Column]:
        properties = self.answer_schema.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            self._fail("schema", "must be an object schema with `properties` (the answer's fields)")
        names = self.output_columns if self.output_columns is not None else list(properties)
        unknown = [n for n in names if n not in properties]
        if unknown:
            self._fail("output_columns", f"{unknown} are not properties of the schema {sorted(properties)}")
        return {n: _Column(n, properties[n]) for n in names}

    def _fail(self, field: str, problem: str) -> Any:
        where = self._source or Path("defs.yaml")
        raise StepDefinitionError(f"{where}: field '{field}': {problem}")


def _enum_type(values: Any) -> str | None:
    """The column type of an `enum` without a `type`: string when every value is one."""
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return "string"
    return None


def _same(value: Any) -> Any:
    return value


def _as_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def check_steps(components: Sequence[LLMStepComponent], tables: Mapping[str, Sequence[str]]) -> None:
    """Check what one file cannot: the upstream asset and its columns exist, and names are unique.

    `tables` maps every other table of the project (built-in ones) to its columns.
    """
    known: dict[str, Sequence[str]] = dict(tables)
    seen: dict[str, LLMStepComponent] = {}
    for component in components:
        step = component.step
        if step.name in known or step.name in seen:
            other = seen[step.name].source if step.name in seen else "a built-in asset"
            component._fail("name", f"a step named {step.name!r} already exists ({other})")
        seen[step.name] = component
    every: dict[str, Sequence[str]] = {
        **known,
        **{n: [f.name for f in c.step.table] for n, c in seen.items()},
    }
    for component in components:
        step = component.step
        if step.upstream not in every:
            component._fail("upstream", f"unknown asset {step.upstream!r}; known: {sorted(every)}")
        missing = [c for c in step.reads if c not in every[step.upstream]]
        if missing:
            component._fail(
                "columns", f"{missing} are not columns of {step.upstream} {list(every[step.upstream])}"
            )
