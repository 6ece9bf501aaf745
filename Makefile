# Quickstart contract (README): `make demo`, `make test`, `make ui`, `make bench`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo test lint format ui bench clean data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3

# Reinstall only when the pinned dependency set changes.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/llm-pipeline demo

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

ui: install
	$(BIN)/llm-pipeline ui

bench: install
	$(BIN)/python -m benchmarks

data: install
	$(BIN)/python -m llm_pipeline.sample_data

clean:
	rm -rf $(VENV) data/warehouse .llm_state .pytest_cache .ruff_cache
