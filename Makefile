# Two commands on a fresh machine (Python 3.11+, make, git): `make run`, `make test`.
# Both install what is missing first: uv (pinned, into .tools/), then .venv from
# the hashed lock files, then this project in editable mode.

PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
TOOLS := .tools
UV := $(TOOLS)/bin/uv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# `make run` and `make ctl` read ./.env (shell syntax, see .env.example) if it exists.
LOAD_ENV := set -a; [ ! -f .env ] || . ./.env; set +a;

export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

.PHONY: run test lint check ctl install lock clean

## run: every process in the foreground (Ctrl-C stops them all)
run: $(STAMP)
	@$(LOAD_ENV) exec $(BIN)/app-entrypoint

## test: the whole test suite
test: $(STAMP)
	$(BIN)/python -m pytest

## lint: ruff (lint + format check) and mypy --strict
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

## ctl: supervisorctl against the stack `make run` started, e.g. make ctl ARGS="status"
ctl: $(STAMP)
	@$(LOAD_ENV) APP_RUNTIME_DIR=$${APP_RUNTIME_DIR:-.run} exec $(BIN)/supervisorctl -c supervisord.conf $(ARGS)

install: $(STAMP)

# Installation messages go to stderr: `make run`'s stdout carries only JSON lines.
$(UV):
	@echo "installing uv $(UV_VERSION) into $(TOOLS)/" >&2
	@$(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) >&2

$(STAMP): requirements-dev.lock pyproject.toml | $(UV)
	@echo "installing requirements-dev.lock and this project into $(VENV)/" >&2
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	@$(UV) pip sync --quiet --python $(BIN)/python requirements-dev.lock
	@$(UV) pip install --quiet --python $(BIN)/python --no-deps --editable .
	@touch $(STAMP)

## lock: recompile both hashed lock files from pyproject.toml
lock: | $(UV)
	$(UV) pip compile --quiet --universal --generate-hashes pyproject.toml -o requirements.lock
	$(UV) pip compile --quiet --universal --generate-hashes --extra dev pyproject.toml -o requirements-dev.lock

clean:
	rm -rf $(VENV) $(TOOLS) .run .mypy_cache .ruff_cache .pytest_cache
