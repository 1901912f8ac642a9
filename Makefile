# cw: the control plane for teams of AI coding agents.
# `make run` and `make test` do all set-up on a machine with python3, git and make.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The test targets spread the suite over this many pytest-xdist processes, each with its
# own test database ("auto": one per CPU; PYTEST_WORKERS=0 runs it in one process).
PYTEST_WORKERS ?= auto
PYTEST := $(PY) -m pytest -n $(PYTEST_WORKERS)

.DEFAULT_GOAL := help
.PHONY: help venv run serve demo test test-fast test-postgres lint typecheck fmt check-migrations migrate superuser bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP) ## Create .venv and install the project with its test tools

migrate: $(STAMP) ## Apply migrations to the database (SQLite under var/ unless DATABASE_URL is set)
	$(PY) manage.py migrate --no-input

superuser: migrate ## Make sure an admin user exists (prints a generated password once)
	$(PY) manage.py ensure_superuser

run: superuser ## Install, migrate, and serve the admin and API on http://127.0.0.1:8000/ (HOST, PORT)
	@echo "Admin: http://$(HOST):$(PORT)/admin/   API docs: http://$(HOST):$(PORT)/api/docs"
	$(PY) manage.py runserver $(HOST):$(PORT)

serve: migrate ## Serve with uvicorn (ASGI) for production (DEBUG off; WORKERS, HOST, PORT; see README)
	DJANGO_DEBUG=false $(PY) manage.py collectstatic --no-input
	@# Each slow or idle client holds a socket: raise the open-files limit to the hard one.
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true; \
	DJANGO_DEBUG=false $(VENV)/bin/uvicorn cw_project.asgi:application \
		--workers $${WORKERS:-3} --host $(HOST) --port $(PORT) --no-access-log \
		--http cw_project.server:HttpProtocol

demo: migrate ## Load the demo initiatives, agents, logs and accounts (safe to run twice)
	$(PY) manage.py cw_demo --base-url http://$(HOST):$(PORT)

test: $(STAMP) ## Run the whole suite (SQLite; set DATABASE_URL for PostgreSQL)
	$(PYTEST) $(PYTEST_ARGS)

test-fast: $(STAMP) ## The suite without the tests that start processes (gunicorn, manage.py, Chromium)
	$(PYTEST) -m "not processes" $(PYTEST_ARGS)

test-postgres: $(STAMP) ## Run the whole suite against the local PostgreSQL
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cw} $(PYTEST) $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy with django-stubs over the apps
	$(VENV)/bin/mypy

fmt: $(STAMP) ## Format and autofix with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check-migrations: $(STAMP) ## Fail if models changed without a migration
	$(PY) manage.py makemigrations --check --dry-run

bench: $(STAMP) ## Run the benchmark
	$(PY) -m bench

clean: ## Remove the virtualenv and local databases
	rm -rf $(VENV) var .pytest_cache .ruff_cache
