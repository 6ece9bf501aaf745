# Quickstart contract (README): `make demo`, `make test`, `make ui`, `make bench`.
# A fresh machine needs Python 3.11 and make; `make test` also needs root (or the apt-get command
# it prints) for the Debian packages the suite starts: redis-server, chromium, and npm (for Azurite).
PYTHON ?= python3.11
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
# Azurite, the Azure Blob emulator of the az:// tests, from the npm registry (pinned).
AZURITE_VERSION := 3.37.0
NPM ?= npm
AZURITE_STAMP := $(TOOLS)/azurite/.azurite-$(AZURITE_VERSION)
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# uv uses this machine's Python 3.11 and never downloads an interpreter of its own.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: install test-deps demo test lint format ui bench clean data

# uv itself comes from PyPI, pinned, into a small tool environment of its own.
$(TOOLS)/.uv-$(UV_VERSION):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	touch $@

# The exact tree in uv.lock (runtime and dev groups); a no-op in well under a second when in sync.
install: $(TOOLS)/.uv-$(UV_VERSION)
	$(UV) sync --locked --python $(PYTHON) --quiet

# Before anything slow: finds redis-server, chromium and npm, installs them as root, else says how;
# then Azurite with that npm (once per version: the stamp makes it a no-op when present).
test-deps:
	$(PYTHON) llm_pipeline_tests/fixtures/system_deps.py --install
	@$(MAKE) --no-print-directory $(AZURITE_STAMP)

$(AZURITE_STAMP):
	$(NPM) install --prefix $(TOOLS)/azurite --save-exact --no-audit --no-fund --loglevel=error azurite@$(AZURITE_VERSION)
	touch $@

demo: install
	$(BIN)/llm-pipeline demo

# Two workers for the tests that wait on servers and processes; the ones that measure throughput
# against a limit (marked serial) then run alone, so no other test's load skews their ratios.
test: test-deps install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n 2 --dist loadfile -m "not serial" --durations=15
	$(BIN)/pytest -m serial --durations=5

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
	$(BIN)/python -m llm_pipeline.tools.sample_data

clean:
	rm -rf $(VENV) $(TOOLS) data/warehouse .llm_state .pytest_cache .ruff_cache
