# One target per task; `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install test lint up down bench chaos verify schema-dump clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with dev extras

test: $(STAMP) ## Run the whole test suite (starts its own Postgres with pg_cron)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff + mypy (strict)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

up: $(STAMP) ## Run the whole product locally on embedded defaults
	$(BIN)/traderctl up

down: $(STAMP) ## Stop the embedded Postgres
	$(BIN)/traderctl db stop

BENCH_OUT ?= .traderctl/bench

bench: $(STAMP) ## End-to-end bench, N=traders (JSON + PNG in .traderctl/bench)
	$(BIN)/python -m bench.run_all $(if $(N),--traders $(N),) \
		--json-out $(BENCH_OUT)/e2e-$(or $(N),10000).json

bench-commit: $(STAMP) ## The commit function alone, fast and durable (N=traders)
	$(BIN)/python -m bench.bench_commit $(if $(N),--traders $(N),) --repeat 3
	$(BIN)/python -m bench.bench_commit $(if $(N),--traders $(N),) --repeat 3 --durable

bench-sandbox-compare: $(STAMP) ## Current filter sandbox vs an older revision's, same process (REF=git revision)
	$(BIN)/python -m bench.sandbox_compare $(if $(REF),--ref $(REF),)

chaos: $(STAMP) ## Fault injection (kill -9, Postgres restart, SIGSTOP, poison jobs, exchange faults; N=traders)
	$(BIN)/python -m bench.chaos $(if $(N),--traders $(N),)

schema-dump: $(STAMP) ## Regenerate tests/schema.sql from migrations/
	$(BIN)/python -m tests.schema_dump > tests/schema.sql

verify: $(STAMP) ## Check generated files are current (schema dump)
	$(BIN)/python -m tests.schema_dump | diff -u tests/schema.sql - && echo "schema dump is current"

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) .traderctl
