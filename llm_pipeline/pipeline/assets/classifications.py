"""classifications: step 2, one Claude call per document, starting from step 1's extraction.

The classifier sees the document's topics and entities (compact, already distilled) and a short
fenced snippet of its raw text (`prompts/classifications.py`); the label must be in the configured
taxonomy twice over: the schema sent lists it as an `enum`, and an answer with another label gets
the repair turn, then an error row, so an injected "hacked" never reaches the table.
`labels_in_taxonomy` checks the result. The flow itself: the LLM step machine (`pipeline/step.py`).
"""

from __future__ import annotations

import dagster as dg

from llm_pipeline.pipeline.checks import AllowedValues
from llm_pipeline.pipeline.step import LLMStep, build_step
from llm_pipeline.prompts import classifications as prompt
from llm_pipeline.warehouse.tables import CLASSIFICATIONS, own_fields

__all__ = ["CLASSIFICATIONS_STEP", "LABELS_IN_TAXONOMY", "classifications"]

LABELS_IN_TAXONOMY = AllowedValues(
    name="labels_in_taxonomy",
    column="label",
    values=lambda settings: settings.taxonomy,
    description="Every label is one of the configured taxonomy's; no ok row lacks one.",
)

CLASSIFICATIONS_STEP = LLMStep(
    name="classifications",
    description="A taxonomy label and confidence for every document, from its extracted entities.",
    upstream="extracted_entities",
    reads=("topics", "entities"),
    joins={"raw_documents": ("text",)},
    prompt=lambda settings: prompt.prompt(settings.taxonomy),
    output_fields=own_fields(CLASSIFICATIONS),
    max_tokens=lambda settings: settings.classification_max_tokens,
    checks=(LABELS_IN_TAXONOMY,),
    metadata=lambda settings: {"taxonomy": dg.MetadataValue.json(list(settings.taxonomy))},
)

classifications, classifications_checks = build_step(CLASSIFICATIONS_STEP)
