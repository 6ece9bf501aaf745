"""corpus_report: step 3, one Claude call per partition that writes the day's report.

The partition flows: classifications joined with extracted_entities → `CorpusStats` (streaming:
counters and a capped sample, bounded for any day size) → one report request → validated `Report`
(one repair on a bad answer) → one row per document again, so the accounting check holds here too:
`included` marks the documents the report counts, and the single call's tokens and cost are spread
over them (`tables.allocate_report_call`), so column sums equal what the call cost. In batch mode the
one request goes through the Message Batches API first (`session.prefetch`).

No `from __future__ import annotations`: Dagster reads the annotations below as real types.
"""

from typing import Any

import dagster as dg

from llm_pipeline.pipeline.assets import LLM_STEP_ASSET
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import PartitionTable, StagedTable, staging_writer
from llm_pipeline.pipeline.partitions import report_freshness
from llm_pipeline.pipeline.resources import ClaudeResource
from llm_pipeline.pipeline.step_parts import (
    RowTally,
    aligned_rows,
    arrow_rows,
    fail_on_systemic,
    sorted_table,
)
from llm_pipeline.prompts import report as task
from llm_pipeline.prompts.answer import call_and_parse
from llm_pipeline.warehouse.tables import CORPUS_REPORT, allocate_report_call, carried_row, make_row

__all__ = ["corpus_report"]

_CALL_COLUMNS = ("input_tokens", "output_tokens", "cost_usd", "attempts")
_PREVIEW_COLUMNS = ("doc_id", "status", "label", "included", "error")
#: What a document's report row needs: the second pass reads only these, in the first pass's order.
_ROW_COLUMNS = ("doc_id", "status", "error", "label")


@dg.asset(**LLM_STEP_ASSET, freshness_policy=report_freshness)
async def corpus_report(
    context: dg.AssetExecutionContext,
    claude: ClaudeResource,
    pipeline_config: PipelineConfig,
    classifications: PartitionTable,
    extracted_entities: PartitionTable,
) -> dg.Output[StagedTable]:
    """The day in a headline and two paragraphs, with the label distribution and totals.

    Freshness: yesterday's report is expected by 08:00 UTC. The nightly run starts at 02:00 UTC and
    takes minutes (batch mode: usually under an hour), so a report still missing at 08:00 means the
    nightly run failed or is stuck, with time left to re-run it before people read the report.
    """
    settings = pipeline_config.settings()
    stats = task.CorpusStats(settings.taxonomy)
    for document in _documents(classifications, extracted_entities):
        stats.add_document(
            document["status"],
            label=document["label"],
            confidence=document["confidence"],
            rationale=document["rationale"],
            topics=document["topics"] or (),
            entities=document["entities"] or (),
        )
        stats.add_usage(document)
        stats.add_usage({column: document[f"entities_{column}"] for column in _CALL_COLUMNS})

    totals, distribution = stats.totals, stats.distribution
    tally = RowTally(_PREVIEW_COLUMNS)
    with fail_on_systemic("corpus_report"), staging_writer(context) as writer:
        async with claude.session(context, step="corpus_report") as session:
            request = task.build_request(
                context.partition_key, stats, model=session.model, max_tokens=settings.report_max_tokens
            )
            await session.prefetch(lambda: [request])
            answer = await call_and_parse(session.call, request, task.parse)
        report = answer.value
        shares = iter(allocate_report_call(answer.records, max(totals.ok, 1)))
        for document in arrow_rows(sorted_table(classifications, _ROW_COLUMNS)):
            row = _row(document, report, answer.error, shares)
            writer.append(row)
            tally.add(row)
        staged = writer.close()

    if report is None:
        context.log.error(f"corpus_report: the report call failed: {answer.error}")
    return dg.Output(
        staged,
        metadata={
            **session.metadata(tally.statuses),
            "report": dg.MetadataValue.md(task.to_markdown(report, distribution, totals)),
            "distribution": dg.MetadataValue.json(distribution),
            "pipeline_cost_usd": dg.MetadataValue.float(totals.cost_usd),
            "preview": tally.preview(),
        },
    )


def _documents(classifications: PartitionTable, extracted_entities: PartitionTable) -> Any:
    return aligned_rows(
        classifications,
        ("doc_id", "status", "error", "label", "confidence", "rationale", *_CALL_COLUMNS),
        [
            (
                extracted_entities,
                {"topics": "topics", "entities": "entities", **{c: f"entities_{c}" for c in _CALL_COLUMNS}},
            )
        ],
    )


def _row(document: dict[str, Any], report: task.Report | None, error: Any, shares: Any) -> dict[str, Any]:
    """A document's report row: carried when it never got a label, else its share of the call."""
    if document["status"] != "ok":
        return carried_row(CORPUS_REPORT, document, upstream_name="classifications")
    common = {"doc_id": document["doc_id"], "label": document["label"], **next(shares)}
    if report is None:
        return make_row(CORPUS_REPORT, status="error", error=f"corpus_report: {error}", **common)
    return make_row(
        CORPUS_REPORT, status="ok", included=True, headline=report.headline, summary=report.summary, **common
    )
