"""Step 1: topics and named entities of one document, as validated structured output."""

from __future__ import annotations

from typing import Annotated, Literal

from anthropic.types import Message
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from llm_pipeline.claude.types import Request
from llm_pipeline.prompts.entities_guide import EXTRACTION_GUIDE
from llm_pipeline.prompts.step_prompt import Fence, StepPrompt
from llm_pipeline.prompts.structured import parse_structured

__all__ = ["PROMPT", "SYSTEM_PROMPT", "Entity", "EntityType", "Extraction", "build_request", "parse"]

EntityType = Literal["person", "organization", "location", "product", "technology", "event", "other"]
Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Entity(BaseModel):
    """A named thing the document mentions."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="The name as written in the document.")
    type: EntityType


class Extraction(BaseModel):
    """Topics and named entities of one document."""

    # Step 2 classifies from this instead of the full text, so it must carry the document's gist.

    model_config = ConfigDict(extra="forbid")

    topics: list[Topic] = Field(min_length=1, max_length=8, description="1-8 short topic phrases.")
    entities: list[Entity] = Field(max_length=50, description="Named entities, most important first.")


#: Guidelines and worked examples: the shared, cacheable prefix of every extraction request.
SYSTEM_PROMPT = EXTRACTION_GUIDE


#: The extraction prompt: a module constant, so 100,000 requests share one (never mutated) schema.
PROMPT = StepPrompt.from_model(
    Extraction,
    step="entities",
    instructions=SYSTEM_PROMPT,
    template="Extract the topics and entities of this document.\n\n{document}",
    fences={"document": Fence(("text",))},
)


def build_request(doc_id: str, text: str, *, model: str, max_tokens: int) -> Request:
    """The extraction call for one document; the text goes fenced into the only user turn."""
    return PROMPT.request({"doc_id": doc_id, "text": text}, model=model, max_tokens=max_tokens)


def parse(message: Message) -> Extraction:
    """The validated extraction, or `BadOutput` naming what was wrong."""
    return parse_structured(message, Extraction)
