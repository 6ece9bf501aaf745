"""extracted_entities: step 1, one Claude call per document for its topics and named entities.

A document flows: raw_documents row → (not ok: carried with its reason) → fenced extraction request →
the call stack → validated `Extraction` (one repair on a bad answer) → one row, appended to the
partition's staging file as soon as it is done. Memory stays bounded: rows stream in from
raw_documents in batches, at most `max_concurrency` calls are in flight, rows stream out. In batch
mode the same requests are first prefetched through the Message Batches API (`session.prefetch`).

No `from __future__ import annotations`: Dagster reads the annotations below as real types.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from llm_pipeline.claude import Request
from llm_pipeline.pipeline.assets import LLM_STEP_ASSET
from llm_pipeline.pipeline.assets._llm_step import RowTally, fail_on_systemic, table_rows
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import PartitionTable, StagedTable, staging_writer
from llm_pipeline.pipeline.resources import ClaudeResource
from llm_pipeline.prompts import entities
from llm_pipeline.prompts.answer import call_and_parse
from llm_pipeline.warehouse.tables import EXTRACTED_ENTITIES, carried_row, llm_columns, make_row

__all__ = ["extracted_entities"]

_PREVIEW_COLUMNS = ("doc_id", "status", "topics", "entities", "error", "cost_usd", "cached")


@dg.asset(**LLM_STEP_ASSET)
async def extracted_entities(
    context: dg.AssetExecutionContext,
    claude: ClaudeResource,
    pipeline_config: PipelineConfig,
    raw_documents: PartitionTable,
) -> dg.Output[StagedTable]:
    """Topics and named entities of every document (one Claude call each)."""
    settings = pipeline_config.settings()
    tally = RowTally(_PREVIEW_COLUMNS)

    with fail_on_systemic("extracted_entities"), staging_writer(context) as writer:
        async with claude.session(context, step="extracted_entities") as session:

            def documents() -> Iterator[dict[str, Any]]:
                return table_rows(raw_documents, ("doc_id", "status", "error", "text"))

            def request_for(document: dict[str, Any]) -> Request | None:
                """The document's extraction call; None when it is not ok (it is carried instead)."""
                if document["status"] != "ok":
                    return None
                return entities.build_request(
                    document["doc_id"],
                    document["text"],
                    model=session.model,
                    max_tokens=settings.entities_max_tokens,
                )

            async def extract(document: dict[str, Any]) -> dict[str, Any]:
                request = request_for(document)
                if request is None:
                    return carried_row(EXTRACTED_ENTITIES, document, upstream_name="raw_documents")
                answer = await call_and_parse(session.call, request, entities.parse)
                if answer.value is None:
                    return _row(document["doc_id"], answer.records, status="error", error=str(answer.error))
                return _row(
                    document["doc_id"],
                    answer.records,
                    status="ok",
                    topics=list(answer.value.topics),
                    entities=[entity.model_dump() for entity in answer.value.entities],
                )

            await session.prefetch(lambda: map(request_for, documents()))
            async for row in session.map(extract, documents(), total=raw_documents.num_rows):
                writer.append(row)
                tally.add(row)
        staged = writer.close()

    return dg.Output(staged, metadata={**session.metadata(tally.statuses), "preview": tally.preview()})


def _row(doc_id: str, records: Any, **values: Any) -> dict[str, Any]:
    return make_row(EXTRACTED_ENTITIES, doc_id=doc_id, **values, **llm_columns(records))
