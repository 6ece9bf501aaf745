"""`make bench`: the scenarios of issue 8 against the project's simulator (see `cli.py`).

One module per scenario (`scenario_*.py`), the baselines people write instead (`baselines/`), a
shared harness (`harness.py`: results, machine record, simulators), the documents
(`documents.py`), the stack driver (`drive.py`) and the report (`report.py`). Nothing here is a
test: `llm_pipeline_tests/test_benchmarks_smoke.py` only runs each scenario tiny.
"""
