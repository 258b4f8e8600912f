# Two commands for a newcomer: `make run` (the whole system, broker included) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(CURDIR)/.tools
GRPCURL_VERSION := v1.9.4
BUF_VERSION := 1.75.0
export PATH := $(TOOLS)/bin:$(TOOLS)/npm/node_modules/.bin:$(PATH)

.PHONY: run test setup tools check protos lint typecheck clean

run: setup ## Run broker, producer and consumer in one terminal (Ctrl-C stops all)
	$(BIN)/coffee-orders dev

test: setup tools check ## Lint, type-check, contract checks, then every test against real Kafka
	$(BIN)/pytest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

tools: $(TOOLS)/bin/grpcurl $(TOOLS)/npm/node_modules/.bin/buf
	scripts/ensure_kcat.sh

$(TOOLS)/bin/grpcurl:
	GOBIN=$(TOOLS)/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

$(TOOLS)/npm/node_modules/.bin/buf:
	npm install --silent --no-fund --no-audit --prefix $(TOOLS)/npm @bufbuild/buf@$(BUF_VERSION)

check: lint typecheck
	buf lint
	buf format --diff --exit-code
	$(BIN)/python scripts/gen_protos.py --check

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy services clients/python/coffee_orders_cli clients/python/coffee_orders_client scripts tests

protos: setup ## Regenerate the committed Python gRPC code from protos/
	$(BIN)/python scripts/gen_protos.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
