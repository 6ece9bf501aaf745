"""The LLM step machine: one `LLMStep` definition, and the asset, table, checks and metadata built from it.

Every LLM asset moves a document the same way, so that way is written once, here:

    upstream row (+ columns joined from other assets by doc_id)
      → not ok upstream: carried (rejected stays rejected; failed or skipped becomes skipped)
      → the step's fenced request (`prompts/step_prompt.py`): the shared prefix first, with a cache
        breakpoint when it is long enough for the model (1-hour TTL in batch mode), then the document
      → the call stack: ledger, shared limiter, breaker, retries, fallback (`pipeline/session.py`)
      → the answer validated (one repair turn on a bad one) → the step's output columns
      → one row with status, error and the call columns, streamed to the partition's staging file.

In batch mode the same requests are first prefetched through the Message Batches API. Memory stays
bounded: rows stream in a batch at a time, at most the client's in-flight bound of calls are in flight, rows
stream out. An error every document would meet (a rejected key, an open breaker) fails the step
instead of writing a partition of error rows, and leaves no Parquet behind.

`extracted_entities` and `classifications` are `LLMStep`s (pipeline/assets/); a step added in YAML
is one too (pipeline/component.py). `build_step` returns the asset and its checks.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's annotations.

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import dagster as dg
import pyarrow as pa

from llm_pipeline.claude import Request
from llm_pipeline.pipeline.assets import LLM_STEP_ASSET
from llm_pipeline.pipeline.checks import AllowedValues, llm_table_checks
from llm_pipeline.pipeline.config import PipelineSettings
from llm_pipeline.pipeline.io_manager import PartitionTable, StagedTable, staging_writer
from llm_pipeline.pipeline.step_parts import RowTally, aligned_rows, fail_on_systemic, table_rows
from llm_pipeline.prompts.answer import call_and_parse
from llm_pipeline.prompts.cache_prefix import CacheTTL
from llm_pipeline.prompts.step_prompt import StepPrompt
from llm_pipeline.warehouse.tables import carried_row, llm_columns, llm_table, make_row

__all__ = ["BuiltStep", "LLMStep", "build_step"]

#: The columns every upstream row is read with, besides the step's own.
_ROW_KEYS = ("doc_id", "status", "error")
_PREVIEW_TAIL = ("error", "cost_usd", "cached")


@dataclass(frozen=True)
class LLMStep:
    """Everything that makes one LLM step, declared once (see the module docstring).

    `prompt` and `max_tokens` may depend on the pipeline settings resolved when a run starts (the
    classification prompt lists the configured taxonomy); `model` overrides the `claude` resource's
    model for this step only (its fallback and limits stay shared).
    """

    name: str
    description: str
    upstream: str
    #: Columns of the upstream table the prompt reads.
    reads: tuple[str, ...]
    prompt: StepPrompt | Callable[[PipelineSettings], StepPrompt]
    output_fields: tuple[pa.Field, ...]
    #: Other assets whose columns join each row by doc_id (the row is then read in doc_id order).
    joins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    model: str | None = None
    max_tokens: int | Callable[[PipelineSettings], int] = 1024
    checks: tuple[AllowedValues, ...] = ()
    #: Extra materialization metadata from the settings (e.g. the taxonomy in effect).
    metadata: Callable[[PipelineSettings], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        self.table  # noqa: B018 - a clash with the standard columns fails at definition time

    @property
    def table(self) -> pa.Schema:
        return llm_table(self.output_fields)

    def prompt_for(self, settings: PipelineSettings) -> StepPrompt:
        return self.prompt(settings) if callable(self.prompt) else self.prompt

    def max_tokens_for(self, settings: PipelineSettings) -> int:
        return self.max_tokens(settings) if callable(self.max_tokens) else self.max_tokens

    @property
    def preview_columns(self) -> tuple[str, ...]:
        own = tuple(f.name for f in self.output_fields)
        return ("doc_id", "status", *own, *_PREVIEW_TAIL)


class BuiltStep(NamedTuple):
    asset: dg.AssetsDefinition
    checks: list[dg.AssetChecksDefinition]


def build_step(step: LLMStep) -> BuiltStep:
    """The step's asset (the pipeline's group and daily partitions, the API pool) and its checks."""
    inputs = {step.upstream: dg.AssetIn(step.upstream, dagster_type=PartitionTable)}
    inputs |= {name: dg.AssetIn(name, dagster_type=PartitionTable) for name in step.joins}

    @dg.asset(
        name=step.name,
        description=step.description,
        ins=inputs,
        required_resource_keys={"claude", "pipeline_config"},
        **LLM_STEP_ASSET,
    )
    async def llm_step(context: dg.AssetExecutionContext, **tables: PartitionTable) -> dg.Output[StagedTable]:
        return await _run(step, context, tables)

    return BuiltStep(llm_step, llm_table_checks(step.name, step.checks))


async def _run(
    step: LLMStep, context: dg.AssetExecutionContext, tables: Mapping[str, PartitionTable]
) -> dg.Output[StagedTable]:
    settings = context.resources.pipeline_config.settings()
    prompt, max_tokens = step.prompt_for(settings), step.max_tokens_for(settings)
    schema, upstream = step.table, tables[step.upstream]
    outputs = [f.name for f in step.output_fields]
    tally = RowTally(step.preview_columns)

    def documents() -> Iterator[dict[str, Any]]:
        return _rows(step, tables)

    with fail_on_systemic(step.name), staging_writer(context, schema) as writer:
        async with context.resources.claude.session(context, step=step.name, model=step.model) as session:
            # A batch can take longer than five minutes between two requests sharing the prefix.
            cache_ttl: CacheTTL = "1h" if session.settings.mode == "batch" else "5m"

            def request_for(document: dict[str, Any]) -> Request | None:
                """The document's call; None when it is not ok upstream (it is carried instead)."""
                if document["status"] != "ok":
                    return None
                return prompt.request(
                    document, model=session.model, max_tokens=max_tokens, cache_ttl=cache_ttl
                )

            async def answer(document: dict[str, Any]) -> dict[str, Any]:
                request = request_for(document)
                if request is None:
                    return carried_row(schema, document, upstream_name=step.upstream)
                answered = await call_and_parse(session.call, request, prompt.parse)
                columns = llm_columns(answered.records)
                if answered.value is None:
                    error = str(answered.error)
                    return make_row(schema, doc_id=document["doc_id"], status="error", error=error, **columns)
                values = {name: answered.value.get(name) for name in outputs}
                return make_row(schema, doc_id=document["doc_id"], status="ok", **values, **columns)

            await session.prefetch(lambda: map(request_for, documents()))
            async for row in session.map(answer, documents(), total=upstream.num_rows):
                writer.append(row)
                tally.add(row)
        staged = writer.close()

    extra = step.metadata(settings) if step.metadata is not None else {}
    return dg.Output(
        staged, metadata={**session.metadata(tally.statuses), **extra, "preview": tally.preview()}
    )


def _rows(step: LLMStep, tables: Mapping[str, PartitionTable]) -> Iterator[dict[str, Any]]:
    """The upstream rows with the columns the step reads; joined ones in doc_id order, so a re-run
    sends the same requests in the same order."""
    columns: Sequence[str] = (*_ROW_KEYS, *step.reads)
    if not step.joins:
        return table_rows(tables[step.upstream], columns)
    others = [(tables[name], {c: c for c in wanted}) for name, wanted in step.joins.items()]
    return aligned_rows(tables[step.upstream], columns, others)
