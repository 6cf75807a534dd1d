# The README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench bench-imports bench-replay check services migrate asyncapi \
	openapi fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

services:
	bash deploy/local/ensure-services.sh

run: $(STAMP) services
	$(BIN)/ledger run

migrate: $(STAMP) services
	$(BIN)/ledger migrate

test: $(STAMP) services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check shared services projections tests
	$(BIN)/ruff format --check shared services projections tests
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP) services
	$(BIN)/python -m tests.bench.postings $(BENCH_ARGS)

# Imports of 10,000 and 100,000 rows (several minutes: the read models catch up last).
bench-imports: $(STAMP) services
	$(BIN)/python -m tests.bench.imports $(BENCH_ARGS)

# Regenerate the AsyncAPI document from the event schemas (a test fails while it is stale).
asyncapi: $(STAMP)
	$(BIN)/python -m shared.asyncapi > shared/asyncapi.json

# Rebuild every read model from 1,000,000 events with `ledger replay`, then audit them.
bench-replay: $(STAMP) services
	$(BIN)/python -m tests.bench.replay $(BENCH_ARGS)

# Regenerate the OpenAPI document from the route table and msgspec schemas (a test
# fails while it is stale).
openapi: $(STAMP)
	$(BIN)/python -m services.api_docs.openapi > shared/openapi.json

# schemathesis at length against `ledger run` (a few minutes): many examples per
# operation, schema-violating requests too, and the CLI's coverage phase with every
# check that applies. `make test` runs a short positive pass of the same test.
FUZZ_EXAMPLES ?= 200
fuzz: $(STAMP) services
	LEDGER_FUZZ=1 LEDGER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/e2e/test_openapi_contract.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
