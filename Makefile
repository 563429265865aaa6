# make demo: set everything up and run the flagship end to end (a verified release).
# make test: set everything up and run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
AXE := node_modules/axe-core/axe.min.js

.PHONY: setup system-deps demo test test-hostile check lint typecheck bench clean

setup: system-deps $(STAMP) $(AXE)

system-deps:
	@scripts/install-system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# axe-core, which the browser tests run in the console's pages (package-lock.json pins it)
$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(AXE)

demo: setup
	$(BIN)/shipyard demo

test: setup
	$(BIN)/pytest

# the adversarial suite alone (docs/security.md); `make test` runs it too
test-hostile: setup
	$(BIN)/pytest -m hostile

check: setup lint typecheck test

lint: setup
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/lint-imports --no-cache

typecheck: setup
	$(BIN)/mypy
	$(BIN)/mypy --strict examples/note-to-page/note_to_page.py

bench: setup
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .shipyard demo .pytest_cache .mypy_cache .ruff_cache
