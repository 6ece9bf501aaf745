"""The cache layout of every step's request: the shared prefix first, a breakpoint at its end when
it reaches the model's minimum (and only then), the prefix byte-stable across documents and runs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from llm_pipeline.claude import ClaudeSettings
from llm_pipeline.prompts import classifications, entities
from llm_pipeline.prompts.cache_prefix import (
    MIN_CACHEABLE_TOKENS,
    UNKNOWN_MODEL_MIN_TOKENS,
    cache_marker,
    min_cacheable_tokens,
    prefix_tokens,
)
from llm_pipeline.prompts.classifications import DEFAULT_TAXONOMY
from llm_pipeline.prompts.entities import Extraction
from llm_pipeline.prompts.step_prompt import Fence, StepPrompt
from llm_pipeline.simulator.config import KNOWN_MODELS
from llm_pipeline.simulator.tokens import prompt_pieces

DEFAULT_MODEL = ClaudeSettings().model
SCHEMA = {"type": "object", "properties": {"score": {"type": "number"}}, "required": ["score"]}


def _prompt(instructions: str) -> StepPrompt:
    return StepPrompt.from_json_schema(
        SCHEMA,
        step="score",
        instructions=instructions,
        template="{document}",
        fences={"document": Fence(("text",))},
    )


def _request(prompt: StepPrompt, model: str, doc: int = 1, **kwargs: Any) -> dict[str, Any]:
    row = {"doc_id": f"d{doc}", "text": f"Document {doc} says something else."}
    return dict(prompt.request(row, model=model, max_tokens=64, **kwargs).params)


def _marked(params: Any) -> bool:
    return "cache_control" in json.dumps(params)


def test_every_known_model_has_a_minimum_and_unknown_ones_get_the_highest() -> None:
    assert set(KNOWN_MODELS) - {"claude-mythos-preview"} <= set(MIN_CACHEABLE_TOKENS)
    assert max(MIN_CACHEABLE_TOKENS.values()) == UNKNOWN_MODEL_MIN_TOKENS
    assert min_cacheable_tokens("claude-made-up-9") == UNKNOWN_MODEL_MIN_TOKENS
    assert min_cacheable_tokens("claude-sonnet-4-6") == 2048  # measured (SDK issue #1194), not the docs' 1024


def test_a_prefix_below_the_minimum_carries_no_marker() -> None:
    # about 600 tokens: above Sonnet 5.5's 512, below Haiku 5.5's 4,096
    prompt = _prompt("Score the document from 0 to 1 by how formal its language is. " * 38)
    assert 512 <= prompt.prefix_tokens < 4096
    small = _request(prompt, "claude-haiku-5-5")
    assert not _marked(small)
    assert small["system"] == prompt.instructions  # exactly the request a prompt had before caching
    marked = _request(prompt, "claude-sonnet-5-5")
    assert marked["system"] == [
        {"type": "text", "text": prompt.instructions, "cache_control": {"type": "ephemeral"}}
    ]


def test_the_breakpoint_ends_the_shared_prefix_and_the_document_follows() -> None:
    params = _request(entities.PROMPT, DEFAULT_MODEL, 3, cache_ttl="1h")
    (system,) = params["system"]
    assert system["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert 'id="d3"' not in system["text"]
    (turn,) = params["messages"]
    assert '<document id="d3">' in turn["content"]  # the document comes after the breakpoint
    assert not _marked(params["messages"])
    assert not _marked(params["output_config"])
    with pytest.raises(ValueError, match="TTL"):
        cache_marker("10m")  # type: ignore[arg-type]


def _classification(
    doc: int, model: str = DEFAULT_MODEL, taxonomy: tuple[str, ...] = DEFAULT_TAXONOMY
) -> Any:
    extraction = Extraction(
        topics=[f"topic {doc}"], entities=[{"name": f"Org {doc}", "type": "organization"}]
    )
    return classifications.build_request(
        f"d{doc}", extraction, f"Snippet {doc}.", taxonomy=taxonomy, model=model, max_tokens=128
    ).params


@pytest.mark.parametrize("step", ["entities", "classifications"])
def test_the_built_in_prompts_are_cacheable_on_the_default_model(step: str) -> None:
    """Measured with the simulator's own token count: the pieces up to the breakpoint (the schema and
    the instructions) reach the default model's minimum, with room for a longer tokenizer."""
    if step == "entities":
        params = entities.build_request(
            "d1", "Acme Corp opened a lab in Oslo.", model=DEFAULT_MODEL, max_tokens=512
        ).params
    else:
        params = _classification(1)
    pieces = prompt_pieces(params)
    marked = [i for i, piece in enumerate(pieces) if piece.cache_control]
    assert len(marked) == 1
    prefix = sum(piece.tokens for piece in pieces[: marked[0] + 1])
    assert prefix >= min_cacheable_tokens(DEFAULT_MODEL)
    assert all(piece.cache_control is None for piece in pieces[marked[0] + 1 :])


def test_the_prefix_is_the_same_for_every_document() -> None:
    for build in (
        lambda doc: (
            entities.build_request(f"d{doc}", f"Text {doc}.", model=DEFAULT_MODEL, max_tokens=512).params
        ),
        _classification,
    ):
        first, second = build(1), build(2)
        assert first["system"] == second["system"]
        assert first["output_config"] == second["output_config"]
        assert first["messages"] != second["messages"]


_PREFIX_DIGEST = """
import hashlib, json
from llm_pipeline.prompts import classifications, entities
from llm_pipeline.prompts.entities import Extraction
ex = Extraction(topics=["t"], entities=[])
parts = [
    entities.build_request("d", "x", model="claude-haiku-5-5", max_tokens=512).params,
    classifications.build_request("d", ex, "x", taxonomy=classifications.DEFAULT_TAXONOMY,
                                  model="claude-haiku-5-5", max_tokens=128).params,
    classifications.build_request("d", ex, "x", taxonomy=("zeta", "alpha", "mu"),
                                  model="claude-sonnet-5-5", max_tokens=128).params,
]
prefixes = [json.dumps([p["output_config"], p["system"]], ensure_ascii=False) for p in parts]
print(hashlib.sha256("\\n".join(prefixes).encode()).hexdigest())
"""


def test_the_prefix_is_byte_stable_across_processes() -> None:
    """No hash-seeded set order, clock or id can reach the prefix: two interpreters with different
    hash seeds render the same bytes."""
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _PREFIX_DIGEST],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=120,
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1
    assert len(digests.pop()) == hashlib.sha256().digest_size * 2


def test_the_estimate_counts_instructions_and_schema_at_four_characters_a_token() -> None:
    assert prefix_tokens("abcd" * 10) == 10
    assert prefix_tokens("abcd" * 10, {"a": 1}) == 10 + 2  # {"a":1} is 7 characters
