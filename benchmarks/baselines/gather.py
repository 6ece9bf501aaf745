"""Baseline: `asyncio.gather` over every document, a semaphore for concurrency, no retries.

The quick way to make the sequential loop fast: 64 calls in flight on the SDK's default client,
its retries switched off so a slow retry never holds a slot; a failed call is a lost document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import anthropic

from llm_pipeline.claude import Request

__all__ = ["CONCURRENCY", "run"]

CONCURRENCY = 64


async def run(base_url: str, requests: Sequence[Request]) -> int:
    client = anthropic.AsyncAnthropic(api_key="sk-sim-baseline", base_url=base_url, max_retries=0)
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(request: Request) -> object:
        async with semaphore:
            return await client.messages.create(**request.params)

    try:
        results = await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
    finally:
        await client.close()
    return sum(not isinstance(result, BaseException) for result in results)
