"""The async call stack: runner → client → limiter, retry, breaker, ledger, metrics.

Imports nothing from Dagster; the Dagster layer (`llm_pipeline.resources`) is its only user there.
"""
