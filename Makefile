# The README's two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench-replicas lock run test bench bench-api-processes bench-imports bench-replay bench-aging bench-search check \
	services migrate asyncapi openapi fuzz clean

# Installs come from the locks, with hashes, never from whatever is newest today: the
# dependencies first (setuptools, the pinned build backend, among them), then the project
# alone (--no-deps, --no-build-isolation: built with the locked setuptools). `make run`
# installs only what runs the service (requirements-run.lock); `make test`, `make check`
# and the benchmarks install the whole set (requirements.lock).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
STAMP := $(DEV_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements-run.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-run.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): requirements.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(RUN_STAMP) $(DEV_STAMP)

# Refresh both locks from pyproject.toml as one resolution (the run lock is constrained
# to the full lock's versions). To upgrade one dependency: `make lock UPGRADE=msgspec`.
UV_VERSION := 0.13.8
UV := $(VENV)-tools/bin/uv
LOCK_FLAGS := --generate-hashes --python-version 3.11 --universal --quiet
BUILD_BACKEND = $$(sed -n 's/^requires = \["\(setuptools==[^"]*\)"\]/\1/p' pyproject.toml)
lock:
	test -x $(UV) || ($(PYTHON) -m venv $(VENV)-tools && $(VENV)-tools/bin/pip install --quiet uv==$(UV_VERSION))
	echo "$(BUILD_BACKEND)" | $(UV) pip compile pyproject.toml - --all-extras $(LOCK_FLAGS) \
		$(if $(UPGRADE),--upgrade-package $(UPGRADE)) -o requirements.lock
	echo "$(BUILD_BACKEND)" | $(UV) pip compile pyproject.toml - $(LOCK_FLAGS) \
		-c requirements.lock -o requirements-run.lock

# `make test` also needs promtool (tests/deploy check the alert rules with it): a
# target-specific variable, which GNU make passes on to the `services` prerequisite.
services:
	bash deploy/local/ensure-services.sh $(SERVICES_FLAGS)

# The hash chain's key for `make run` and `make migrate`: a random one, made once by
# `ledger hmac-key create` and kept outside the repository, in the user's configuration
# directory (one local database, one key, whichever clone runs it). Back it up: the
# audit cannot verify events without the key that hashed them. LEDGER_HMAC_KEY or
# LEDGER_HMAC_KEY_FILE set in the environment are used instead.
HMAC_KEY_FILE ?= $(or $(XDG_CONFIG_HOME),$(HOME)/.config)/ledger/hmac.key
ifeq ($(LEDGER_HMAC_KEY)$(LEDGER_HMAC_KEY_FILE),)
LEDGER_KEY := LEDGER_HMAC_KEY_FILE=$(HMAC_KEY_FILE)
CREATE_KEY := $(BIN)/ledger hmac-key create --file $(HMAC_KEY_FILE)
endif

run: $(RUN_STAMP) services
	$(CREATE_KEY)
	$(LEDGER_KEY) $(BIN)/ledger run

migrate: $(STAMP) services
	$(CREATE_KEY)
	$(LEDGER_KEY) $(BIN)/ledger migrate

test: SERVICES_FLAGS = --with-promtool --with-standby
test: $(STAMP) services
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check shared services projections tests
	$(BIN)/ruff format --check shared services projections tests
	$(BIN)/lint-imports
	$(BIN)/mypy

# Postings over HTTP at concurrency 1, 16 and 64 with the asyncpg baseline after each,
# two phases for the record at 64 (Idempotency-Key; a subscriber queue), then the
# eventsourcing peer at 1 and 16, and the summary (about 2.5 minutes; BENCH_ARGS=
# "--seconds 5" shortens every phase); then postings and reads with 1 API process
# against one per core (at least 2), about 1.5 minutes more, also alone: `make
# bench-api-processes`; last, the read replicas' phase (bench-replicas).
bench: SERVICES_FLAGS = --with-standby
bench: $(STAMP) services
	$(BIN)/python -m tests.bench.postings $(BENCH_ARGS)
	$(BIN)/python -m tests.bench.api_processes $(BENCH_ARGS)
	$(BIN)/python -m tests.bench.replica_reads $(BENCH_ARGS)

bench-api-processes: $(STAMP) services
	$(BIN)/python -m tests.bench.api_processes $(BENCH_ARGS)

# Reads spread over the primary and the local hot standby against the primary alone:
# reads/s, postings/s with their latency, and each server's CPU (under a minute).
bench-replicas: SERVICES_FLAGS = --with-standby
bench-replicas: $(STAMP) services
	$(BIN)/python -m tests.bench.replica_reads $(BENCH_ARGS)

# Imports of 10,000 and 100,000 rows (several minutes: the read models catch up last).
bench-imports: $(STAMP) services
	$(BIN)/python -m tests.bench.imports $(BENCH_ARGS)

# Searches (GET /api/v3/clients?search=) on 100,000 imported clients: p50/p99 per
# search and overall, and PostgreSQL's plans (several minutes: the import, then
# autovacuum's pass over the new rows).
bench-search: $(STAMP) services
	$(BIN)/python -m tests.bench.search $(BENCH_ARGS)

# Regenerate the AsyncAPI document from the event schemas (a test fails while it is stale).
asyncapi: $(STAMP)
	$(BIN)/python -m shared.bus.asyncapi > shared/asyncapi.json

# The aged receivables report of 100,000 clients with 1,000,000 postings (a few
# minutes: the clients are imported first).
bench-aging: $(STAMP) services
	$(BIN)/python -m tests.bench.aging $(BENCH_ARGS)

# Rebuild every read model from 1,000,000 events with `ledger replay`, then audit them.
bench-replay: $(STAMP) services
	$(BIN)/python -m tests.bench.replay $(BENCH_ARGS)

# Regenerate the OpenAPI document from the route table and msgspec schemas (a test
# fails while it is stale).
openapi: $(STAMP)
	$(BIN)/python -m services.api_docs.openapi > shared/openapi.json

# schemathesis at length against `ledger run` (a few minutes): many examples per
# operation, schema-violating requests too, and the CLI's coverage phase with every
# check that applies. `make test` runs a short positive pass of the same tests and
# the CLI's coverage phase alone, on a time budget.
FUZZ_EXAMPLES ?= 200
fuzz: $(STAMP) services
	LEDGER_FUZZ=1 LEDGER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest \
		tests/e2e/test_openapi_contract.py tests/e2e/test_openapi_cli.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(VENV)-tools *.egg-info
