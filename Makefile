# StreamDesk — one obvious command for each job. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
PYTEST_ARGS ?=

.PHONY: help install frontend run test test-clock test-fast lint format bench bench-quick chaos migrate clean-data

help: ## list the targets with a one-line description
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## install uv (if missing) and the workspace into .venv (uses the system Python)
	@bash scripts/bootstrap.sh

frontend: ## build the dashboard (frontend/dist) when its sources changed (needs Node >= 20)
	@bash scripts/build-frontend.sh

run: install frontend ## run the whole stack locally: Postgres, Redis, migrations, every service (Ctrl-C stops)
	@bash scripts/run.sh

test: install frontend ## the whole test-suite: frontend unit tests (vitest), then pytest (unit, integration on real Postgres+Redis, e2e in Chromium)
	@cd frontend && npm test --silent
	@$(UV) run --frozen pytest $(PYTEST_ARGS)

test-clock: install ## the suite with the clock moved inside, then outside market hours (libfaketime)
	@bash scripts/test-at.sh "2026-12-02 16:00:00" $(PYTEST_ARGS)
	@bash scripts/test-at.sh "2026-12-05 17:00:00" $(PYTEST_ARGS)

test-fast: install ## run only the unit tests
	@$(UV) run --frozen pytest -m unit $(PYTEST_ARGS)

lint: install ## ruff (lint + format check) and mypy strict
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy shared/streamdesk services/*/streamdesk_* devtools/streamdesk_dev

format: install ## apply ruff's formatting and autofixes
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

bench: install ## run the benchmarks in bench/ (BENCH=storage runs only bench/bench_storage.py)
	@bash bench/run_all.sh

bench-quick: install ## short end-to-end pipeline benchmark (< 2 min): bench/results/latest.json + pipeline.png
	@.venv/bin/python bench/bench_pipeline.py --quick

chaos: install ## long chaos run of the whole stack (~20 min; CHAOS_MINUTES=n): table + bench/results/chaos.json
	@CHAOS_PROFILE=long $(UV) run --frozen pytest tests/chaos/test_chaos_stack.py -p no:cacheprovider -s -q $(PYTEST_ARGS)

migrate: install ## apply pending migrations to DATABASE_URL (default: the local stack's)
	@$(UV) run --frozen streamdesk migrate

clean-data: ## delete the local stack's data directory (.data/)
	rm -rf .data
