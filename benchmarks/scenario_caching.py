"""Scenario 8 (issue 17): prompt caching on a token-bound account.

1,000 classification requests, each a ~3,000-token shared prefix (the JSON schema and the
classification guide up to its seventh worked example) and a ~2,000-character (~500-token)
document, against a simulator whose input-tokens-per-minute limit binds: 4,800,000 ITPM (80,000
tokens/s) with a 2 s bucket, 12,000 RPM and 4,000,000 OTPM that do not, answering after a
lognormal 0.5 s (sigma 0.5). The same documents run twice, each on a fresh simulator with the
same limits: once with the prefix marked for the prompt cache (what the pipeline sends), once
without the marker. Model `claude-sonnet-5-5` (a 512-token minimum in the pipeline's table, so
the marker is sent; the simulator caches from 1,024 tokens by default).

Uncached, every request counts ~3,500 input tokens against the limit; cached, only the document
and, once per run, the write of the prefix, because cache reads do not count toward ITPM on
current models. Cost is priced from the simulator's own token counters (the ground truth) at the
pipeline's price table.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from benchmarks.documents import documents
from benchmarks.drive import StackRun, run_stack
from benchmarks.harness import ScenarioResult, Target, log, simulator
from llm_pipeline.claude import ClaudeSettings, Request
from llm_pipeline.claude.pricing import cost
from llm_pipeline.prompts.classification_guide import DEFAULT_TAXONOMY, classification_guide
from llm_pipeline.prompts.classifications import prompt as classification_prompt
from llm_pipeline.prompts.step_prompt import Fence, StepPrompt
from llm_pipeline.simulator import Latency, Limits, SimulatorConfig

__all__ = ["DOCUMENTS", "run_caching"]

DOCUMENTS = 1_000
MODEL = "claude-sonnet-5-5"
DOC_CHARS = 2_000
RPM, ITPM, OTPM, BURST_S = 12_000, 4_800_000, 4_000_000, 2.0
LATENCY = Latency(median_s=0.5, sigma=0.5)
CONCURRENCY = 128
MAX_TOKENS = 128


def _instructions() -> str:
    """The classification guide up to its seventh worked example: about 2,850 tokens."""
    guide = classification_guide(DEFAULT_TAXONOMY)
    return guide[: guide.rfind("\nExample ", 0, 11_600)]


def _prompt() -> StepPrompt:
    base = classification_prompt(DEFAULT_TAXONOMY)
    return StepPrompt(
        step="bench_caching",
        instructions=_instructions(),
        template="Classify this document.\n\n{document}",
        schema=base.schema,
        fences={"document": Fence(("text",))},
        model_cls=base.model_cls,
    )


def caching_requests(n: int, *, cached: bool) -> list[Request]:
    """The scenario's requests: the pipeline's layout, with or without the cache breakpoint."""
    prompt = _prompt()
    requests = []
    for doc_id, text in documents(n, chars=DOC_CHARS, seed=17):
        request = prompt.request({"doc_id": doc_id, "text": text}, model=MODEL, max_tokens=MAX_TOKENS)
        if not cached:
            request = Request(request.key, {**request.params, "system": prompt.instructions}, request.tags)
        requests.append(request)
    return requests


def _settings(base_url: str, state: str) -> ClaudeSettings:
    return ClaudeSettings(
        api_key="sk-sim-bench",
        base_url=base_url,
        model=MODEL,
        rpm=RPM,
        itpm=ITPM,
        otpm=OTPM,
        burst_seconds=BURST_S,
        max_concurrency=CONCURRENCY,
        state=state,
    )


def _measure(n: int, *, cached: bool) -> tuple[StackRun, dict[str, Any]]:
    config = SimulatorConfig(
        limits=Limits(rpm=RPM, itpm=ITPM, otpm=OTPM, burst_seconds=BURST_S), latency=LATENCY
    )
    requests = caching_requests(n, cached=cached)
    with simulator(config) as sim, tempfile.TemporaryDirectory() as state:
        run = run_stack(_settings(sim.base_url, state), requests)
        return run, sim.control.stats()


def _row(label: str, run: StackRun, server: dict[str, Any]) -> dict[str, Any]:
    billed = {
        "input_tokens": server["input_tokens"],
        "output_tokens": server["output_tokens"],
        "cache_creation_input_tokens": server["cache_creation_input_tokens"],
        "cache_read_input_tokens": server["cache_read_input_tokens"],
    }
    usd = cost(MODEL, billed) or 0.0
    writes = server["cache_writes"]
    return {
        "prompt": label,
        "documents": run.documents,
        "lost": run.lost,
        "wall_s": round(run.wall_s, 1),
        "documents_per_min": round(run.documents / run.wall_s * 60, 0),
        "cost_per_1000_documents_usd": round(usd / run.documents * 1000, 4),
        "uncached_input_per_call": round(server["input_tokens"] / max(1, server["successes"])),
        "prefix_tokens": round(server["cache_creation_input_tokens"] / writes) if writes else None,
        "cache_writes": writes,
        "cache_reads": server["cache_reads"],
        "limiter_429": server["limiter_429"],
        "duplicate_paid_calls": server["duplicate_successes"],
    }


def run_caching(n: int = DOCUMENTS) -> ScenarioResult:
    """Scenario 8: the same documents with and without the cache breakpoint, at the same limits."""
    started = time.perf_counter()
    log(f"[8] prompt caching, token-bound: {n} documents, with and without the breakpoint")
    rows = []
    for label, cached in (("cached prefix", True), ("no cache breakpoint", False)):
        run, server = _measure(n, cached=cached)
        rows.append(_row(label, run, server))
    with_cache, without = rows
    speed = with_cache["documents_per_min"] / without["documents_per_min"]
    cost_ratio = with_cache["cost_per_1000_documents_usd"] / without["cost_per_1000_documents_usd"]
    result = ScenarioResult(
        key="8",
        title="Prompt caching, token-bound: ~3,000-token shared prefix, ~500-token documents",
        config={
            "documents": n,
            "model": MODEL,
            "document_chars": DOC_CHARS,
            "prefix": "JSON schema + classification guide up to its 7th worked example",
            "max_tokens": MAX_TOKENS,
            "simulator_limits": {"rpm": RPM, "itpm": ITPM, "otpm": OTPM, "burst_seconds": BURST_S},
            "latency": {"median_s": LATENCY.median_s, "sigma": LATENCY.sigma},
            "client": {
                "max_concurrency": CONCURRENCY,
                "rpm": RPM,
                "itpm": ITPM,
                "otpm": OTPM,
                "burst_seconds": BURST_S,
            },
        },
        columns=list(with_cache),
        rows=rows,
        targets=[
            Target("documents/min, cached / uncached", round(speed, 2), ">=", 3.0),
            Target("cost per document, cached / uncached", round(cost_ratio, 3), "<=", 0.3),
            Target("documents lost (both runs)", with_cache["lost"] + without["lost"], "==", 0),
            Target("cache writes (cached run)", with_cache["cache_writes"], "==", 1),
        ],
        definitions=[
            "documents/min = documents / seconds from the first request sent to the last answer x 60.",
            "cost per document = the simulator's billed tokens of the run (input, 5-minute cache writes, "
            "cache reads, output) at the pipeline's price table for the model, / documents (shown per "
            "1,000 documents).",
            "prefix tokens = cache-write tokens / cache writes (the simulator's usage counters); uncached "
            "input per call = billed input tokens / successful calls.",
            "cache writes = calls whose usage shows a cache write: 1 means the warm-up let only the first "
            "call write the prefix.",
        ],
    )
    result.seconds = time.perf_counter() - started
    return result
