"""classifications: step 2, one Claude call per document, starting from step 1's extraction.

A document flows: extracted_entities row (+ a short snippet of its raw text) → (not ok upstream:
carried, rejected stays rejected, failed becomes skipped) → fenced classification request → the call
stack → validated `Classification` whose label must be in the taxonomy (one repair otherwise) → one
row, streamed to the partition's staging file. In batch mode the same requests are first prefetched
through the Message Batches API (`session.prefetch`).

No `from __future__ import annotations`: Dagster reads the annotations below as real types.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from llm_pipeline.claude import Request
from llm_pipeline.pipeline.assets import LLM_STEP_ASSET
from llm_pipeline.pipeline.assets._llm_step import RowTally, aligned_rows, fail_on_systemic
from llm_pipeline.pipeline.config import PipelineConfig
from llm_pipeline.pipeline.io_manager import PartitionTable, StagedTable, staging_writer
from llm_pipeline.pipeline.resources import ClaudeResource
from llm_pipeline.prompts import classifications as task
from llm_pipeline.prompts.answer import call_and_parse
from llm_pipeline.prompts.entities import Extraction
from llm_pipeline.warehouse.tables import CLASSIFICATIONS, carried_row, llm_columns, make_row

__all__ = ["classifications"]

_PREVIEW_COLUMNS = ("doc_id", "status", "label", "confidence", "rationale", "error", "cost_usd")


@dg.asset(**LLM_STEP_ASSET)
async def classifications(
    context: dg.AssetExecutionContext,
    claude: ClaudeResource,
    pipeline_config: PipelineConfig,
    extracted_entities: PartitionTable,
    raw_documents: PartitionTable,
) -> dg.Output[StagedTable]:
    """A taxonomy label and confidence for every document, from its extracted entities."""
    settings = pipeline_config.settings()
    taxonomy = settings.taxonomy
    tally = RowTally(_PREVIEW_COLUMNS)

    def parse(message: Any) -> task.Classification:
        return task.parse(message, taxonomy=taxonomy)

    with fail_on_systemic("classifications"), staging_writer(context) as writer:
        async with claude.session(context, step="classifications") as session:

            def documents() -> Iterator[dict[str, Any]]:
                return aligned_rows(
                    extracted_entities,
                    ("doc_id", "status", "error", "topics", "entities"),
                    raw_documents,
                    {"text": "text"},
                )

            def request_for(document: dict[str, Any]) -> Request | None:
                """The document's classification call; None when it is not ok (it is carried instead)."""
                if document["status"] != "ok":
                    return None
                return task.build_request(
                    document["doc_id"],
                    Extraction(topics=document["topics"], entities=document["entities"]),
                    document["text"] or "",
                    taxonomy=taxonomy,
                    model=session.model,
                    max_tokens=settings.classification_max_tokens,
                )

            async def classify(document: dict[str, Any]) -> dict[str, Any]:
                request = request_for(document)
                if request is None:
                    return carried_row(CLASSIFICATIONS, document, upstream_name="extracted_entities")
                answer = await call_and_parse(session.call, request, parse)
                columns = llm_columns(answer.records)
                if answer.value is None:
                    return make_row(
                        CLASSIFICATIONS,
                        doc_id=document["doc_id"],
                        status="error",
                        error=str(answer.error),
                        **columns,
                    )
                return make_row(
                    CLASSIFICATIONS,
                    doc_id=document["doc_id"],
                    status="ok",
                    label=answer.value.label,
                    confidence=answer.value.confidence,
                    rationale=answer.value.rationale,
                    **columns,
                )

            await session.prefetch(lambda: map(request_for, documents()))
            async for row in session.map(classify, documents(), total=extracted_entities.num_rows):
                writer.append(row)
                tally.add(row)
        staged = writer.close()

    return dg.Output(
        staged,
        metadata={
            **session.metadata(tally.statuses),
            "taxonomy": dg.MetadataValue.json(list(taxonomy)),
            "preview": tally.preview(),
        },
    )
