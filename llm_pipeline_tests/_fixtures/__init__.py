"""Fixture families, registered from `llm_pipeline_tests/conftest.py` via `pytest_plugins`."""
