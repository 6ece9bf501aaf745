"""extracted_entities: step 1, one Claude call per document for its topics and named entities.

Each ok raw document's text goes fenced into the extraction prompt (`prompts/entities.py`); the
validated answer becomes the `topics` and `entities` columns. How a document flows, retries,
repairs, batch mode and metadata: the LLM step machine (`pipeline/step.py`).
"""

from __future__ import annotations

from llm_pipeline.pipeline.step import LLMStep, build_step
from llm_pipeline.prompts import entities as prompt
from llm_pipeline.warehouse.tables import EXTRACTED_ENTITIES, own_fields

__all__ = ["ENTITIES", "extracted_entities"]

ENTITIES = LLMStep(
    name="extracted_entities",
    description="Topics and named entities of every document (one Claude call each).",
    upstream="raw_documents",
    reads=("text",),
    prompt=prompt.PROMPT,
    output_fields=own_fields(EXTRACTED_ENTITIES),
    max_tokens=lambda settings: settings.entities_max_tokens,
)

extracted_entities, entities_checks = build_step(ENTITIES)
