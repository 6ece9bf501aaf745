"""Whether a step's shared prefix gets a cache breakpoint: per-model minimums and the estimate.

The API caches a prefix only when it holds at least the model's minimum number of tokens; below
it nothing is written and no error is raised (ANTHROPIC_FACTS §7). A step marks the end of what
its requests share (`step_prompt.py`) only when the estimate reaches the minimum: otherwise the
marker buys nothing, and the first request would wait for a cache write that never happens.

The minimums (ANTHROPIC_FACTS §7, gathered 2026-11-24) come from sources that disagree. Where they
do, the table takes the lowest value: a marker on a prefix the API then finds too short costs
nothing, and the first response's usage shows it (no `cache_creation_input_tokens`), which is what
the call stack learns from before it books or waits as if the prefix were cached; a value set too
high would silently give the saving up. A model no source covers gets its predecessor's value, and
an unknown model id the highest value any source gives, so no marker goes where none is known to
work.

Sources: DOCS = the Anthropic docs copy quoted in anthropic-sdk-python issue #1194 (Opus 4.6 era);
SKILL = anthropics/skills claude-api prompt-caching.md (2026-07-01); creeta = dev.to "Claude's
prompt cache fails silently below 1,024 tokens"; apidog = its Sonnet 5.5 guide; litellm =
BerriAI/litellm discussion 39163; orq = docs.orq.ai. All but DOCS and SKILL are 3rd-party.

The estimate is 4 characters per token: fewer tokens than Claude's tokenizers give for English
prose (newer ones give about a third more, ANTHROPIC_FACTS §1), so an estimate at the minimum means
the real prefix reaches it. The output schema counts: it is part of the cached prefix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "CHARS_PER_TOKEN",
    "MIN_CACHEABLE_TOKENS",
    "UNKNOWN_MODEL_MIN_TOKENS",
    "CacheTTL",
    "cache_marker",
    "min_cacheable_tokens",
    "prefix_tokens",
]

CacheTTL = Literal["5m", "1h"]
CHARS_PER_TOKEN = 4
#: The highest minimum any source gives for a current model.
UNKNOWN_MODEL_MIN_TOKENS = 4096

MIN_CACHEABLE_TOKENS: Mapping[str, int] = {
    # 4096: DOCS, SKILL and orq agree.
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
    "claude-opus-4-5-20251101": 4096,
    "claude-haiku-4-5": 4096,
    "claude-haiku-4-5-20251001": 4096,
    # SKILL 4096; creeta 1024 (4.8) and 2048 (4.7).
    "claude-opus-4-8": 1024,
    "claude-opus-4-7": 2048,
    # Measured: issue #1194 saw nothing cached at ~1,024 tokens and writes at 2,048 (DOCS said
    # 1024; SKILL and orq say 2048).
    "claude-sonnet-4-6": 2048,
    # 1024: DOCS, SKILL and orq agree.
    "claude-sonnet-4-5": 1024,
    "claude-sonnet-4-5-20250929": 1024,
    # Fable 5 (and Mythos 5): SKILL 2048, creeta 512.
    "claude-fable-5": 512,
    "claude-mythos-5": 512,
    # 3rd-party only: Sonnet 5 1024 and Sonnet 5.5 512 (apidog), Fable 5.1 512 (litellm), Opus 5
    # 512 (creeta).
    "claude-sonnet-5": 1024,
    "claude-sonnet-5-5": 512,
    "claude-fable-5-1": 512,
    "claude-mythos-5-1": 512,
    "claude-opus-5": 512,
    # No source: the predecessor's value (Fable 5.1, Opus 5, Haiku 4.5).
    "claude-fable-5-2": 512,
    "claude-mythos-5-2": 512,
    "claude-opus-5-5": 512,
    "claude-haiku-5-5": 4096,
}


def min_cacheable_tokens(model: str) -> int:
    """The smallest prefix `model` caches, per the table (see the module docstring)."""
    return MIN_CACHEABLE_TOKENS.get(model, UNKNOWN_MODEL_MIN_TOKENS)


def prefix_tokens(instructions: str, schema: Mapping[str, Any] | None = None) -> int:
    """Estimated tokens of a shared prefix: the instructions and the output schema (compact JSON)."""
    chars = len(instructions)
    if schema is not None:
        chars += len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False))
    return math.ceil(chars / CHARS_PER_TOKEN)


def cache_marker(ttl: CacheTTL = "5m") -> dict[str, str]:
    """The `cache_control` of a breakpoint: 5 minutes is the API's default, so only 1 h is spelled."""
    if ttl not in ("5m", "1h"):
        raise ValueError(f"cache TTL must be '5m' or '1h', got {ttl!r}")
    return {"type": "ephemeral", "ttl": "1h"} if ttl == "1h" else {"type": "ephemeral"}
