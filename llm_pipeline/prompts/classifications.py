"""Step 2: one label from the taxonomy per document, from step 1's extraction and a short snippet.

The classifier sees the topics and entities (compact, already distilled) and at most
`SNIPPET_CHARS` of the text, all fenced as untrusted data. The label is constrained twice: the
schema sent lists the taxonomy as an `enum`, and `parse` rejects any other label, so an injected
"hacked" can never reach the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Annotated, Any

from anthropic.types import Message
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from llm_pipeline.claude.errors import BadOutput
from llm_pipeline.claude.types import Request
from llm_pipeline.prompts.classification_guide import DEFAULT_TAXONOMY, classification_guide
from llm_pipeline.prompts.entities import Extraction
from llm_pipeline.prompts.step_prompt import Fence, StepPrompt, snippet
from llm_pipeline.prompts.structured import parse_structured, strict_json_schema

__all__ = [
    "DEFAULT_TAXONOMY",
    "SNIPPET_CHARS",
    "Classification",
    "build_request",
    "parse",
    "prompt",
    "snippet",
    "system_prompt",
]

SNIPPET_CHARS = 1000


class Classification(BaseModel):
    """One label with how sure the model is and why."""

    model_config = ConfigDict(extra="forbid")

    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    confidence: float = Field(ge=0.0, le=1.0, description="How sure you are, from 0 to 1.")
    rationale: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = Field(
        description="One sentence: why this label."
    )


def system_prompt(taxonomy: Sequence[str]) -> str:
    """The classifier's instructions for this taxonomy: the shared, cacheable prefix of its requests."""
    return classification_guide(taxonomy)


@cache
def _schema(taxonomy: tuple[str, ...]) -> dict[str, Any]:
    """One (never mutated) schema per taxonomy, shared by every request."""
    schema = strict_json_schema(Classification)
    schema["properties"]["label"] = {"type": "string", "enum": list(taxonomy)}
    return schema


@cache
def prompt(taxonomy: tuple[str, ...]) -> StepPrompt:
    """The classification prompt for one taxonomy: its labels in the instructions and the schema,
    and an answer with any other label rejected (it gets the repair turn)."""

    def in_taxonomy(answer: Classification) -> None:
        if answer.label not in taxonomy:
            raise BadOutput(f"label {answer.label!r} is not in the taxonomy {list(taxonomy)}")

    return StepPrompt(
        step="classifications",
        instructions=system_prompt(taxonomy),
        template="Classify this document.\n\n{extraction}\n\n{document}",
        schema=_schema(taxonomy),
        model_cls=Classification,
        fences={
            "extraction": Fence(("topics", "entities")),
            "document": Fence(("text",), max_chars=SNIPPET_CHARS),
        },
        check=in_taxonomy,
    )


def build_request(
    doc_id: str,
    extraction: Extraction,
    text_snippet: str,
    *,
    taxonomy: Sequence[str],
    model: str,
    max_tokens: int,
) -> Request:
    """The classification call for one document (the snippet is cut to `SNIPPET_CHARS` here too)."""
    row = {"doc_id": doc_id, **extraction.model_dump(mode="json"), "text": text_snippet}
    return prompt(tuple(taxonomy)).request(row, model=model, max_tokens=max_tokens)


def parse(message: Message, *, taxonomy: Sequence[str]) -> Classification:
    """The validated classification; a label outside `taxonomy` is `BadOutput` naming both."""
    result = parse_structured(message, Classification)
    prompt(tuple(taxonomy)).check(result)  # type: ignore[misc]
    return result
