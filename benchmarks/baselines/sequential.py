"""Baseline: one call after another with the synchronous SDK, as in the SDK's README.

The SDK's defaults do the error handling: two retries with backoff, honouring `retry-after`.
A document whose three attempts all fail is logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anthropic

from llm_pipeline.claude import Request

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(base_url: str, requests: Sequence[Request]) -> int:
    client = anthropic.Anthropic(api_key="sk-sim-baseline", base_url=base_url)
    answered = 0
    try:
        for request in requests:
            try:
                client.messages.create(**request.params)
            except anthropic.APIError as exc:
                log.warning("document %s failed: %s", request.key, exc)
                continue
            answered += 1
    finally:
        client.close()
    return answered
