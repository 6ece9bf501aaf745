"""The benchmark's documents: the sample generator's realistic text, cut to a fixed length.

Scenarios 1, 2 and 6 call for ~1,500-character documents: the generator's documents (people,
organisations, places, several scripts) are joined and cut at word boundaries, so every
document is as long as asked and every request is distinct. The requests are the pipeline's own
extraction requests (the step's template, fences and JSON schema) with the short instructions the
extraction step had when the scenarios were defined (issue 8): since issue 17 the step's own
instructions are a ~4,400-token cached prefix, which would turn scenario 2's token-bound workload
into a request-bound one and make its figures incomparable with earlier runs. Scenario 8 measures
prompt caching with a prefix of its own.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date

from llm_pipeline.claude import Request
from llm_pipeline.prompts import entities
from llm_pipeline.prompts.fencing import UNTRUSTED_NOTICE
from llm_pipeline.tools.sample_data import generate_day

__all__ = ["MODEL", "documents", "extraction_requests", "short_requests"]

MODEL = "claude-haiku-5-5"
_DAY = date(2026, 11, 20)
#: The extraction prompt of scenarios 1-6: short instructions, below every model's cache minimum.
_PROMPT = dataclasses.replace(
    entities.PROMPT,
    instructions=(
        "You extract the main topics and the named entities (people, organizations, locations, products, "
        "technologies, events) from one document. Give 1 to 8 short topic phrases and at most 50 entities, "
        "each once, most important first. " + UNTRUSTED_NOTICE
    ),
)


def documents(n: int, *, chars: int = 1_500, seed: int = 8) -> list[tuple[str, str]]:
    """`n` (id, text) pairs of about `chars` characters each (cut after the next space)."""
    pairs: list[tuple[str, str]] = []
    buffer = ""
    lines = generate_day(_DAY, max(64, n), seed=seed, bad_lines=False)
    round_ = 0
    while len(pairs) < n:
        while len(buffer) < 2 * chars:
            line = next(lines, None)
            if line is None:
                round_ += 1
                lines = generate_day(_DAY, max(64, n), seed=seed + round_, bad_lines=False)
                continue
            buffer += " " + json.loads(line)["text"].replace("\n\n", " ")
        cut = buffer.find(" ", chars)
        pairs.append((f"bench-{seed}-{len(pairs):06d}", buffer[:cut].strip()))
        buffer = buffer[cut:]
    return pairs


def extraction_requests(n: int, *, chars: int = 1_500, max_tokens: int = 200, seed: int = 8) -> list[Request]:
    """The pipeline's extraction request for `n` distinct documents."""
    return [
        _PROMPT.request({"doc_id": doc_id, "text": text}, model=MODEL, max_tokens=max_tokens)
        for doc_id, text in documents(n, chars=chars, seed=seed)
    ]


def short_requests(prefix: str, n: int) -> list[Request]:
    """Small distinct requests with a plain-text answer: cheap for the simulator to serve, so a
    zero-latency run measures the client, not the server (scenario 4)."""
    return [
        Request(
            key=f"{prefix}-{i}",
            params={
                "model": MODEL,
                "max_tokens": 128,
                "messages": [
                    {
                        "role": "user",
                        "content": f'<document id="{prefix}-{i}">Acme Robotics opened a plant in Lyon; '
                        f"report {prefix}-{i} says Jane Doe leads the Model {i} team.</document>",
                    }
                ],
            },
        )
        for i in range(n)
    ]
