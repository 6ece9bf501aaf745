"""Fixture families, registered in `llm_pipeline_tests/conftest.py` through `pytest_plugins`."""
