# Two commands for a newcomer: `make run` (the whole system, broker included) and `make test`.
# `make run` needs only the runtime packages; each tool is installed by the target that uses it:
# grpcurl, kcat and promtool/prometheus (`make tools`: the README's demo and the tests), buf and the Go code generators
# (`make contract-tools`: contract checks), ghz and hey (`make bench-tools`: benchmarks).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := $(CURDIR)/.tools
GRPCURL_VERSION := v1.9.4
BUF_VERSION := 1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GHZ_VERSION := v0.121.0
HEY_VERSION := v0.1.5
# The contract as last released: `buf breaking` compares with it, not with the previous commit, so a
# breaking change spread over several commits still fails. `make release-contract` moves it forward.
RELEASED_CONTRACT := protos/released-v1.json
export PATH := $(TOOLS)/bin:$(TOOLS)/npm/node_modules/.bin:$(PATH)

.PHONY: run test unit bench setup runtime tools contract-tools bench-tools check contract protos release-contract lint typecheck rules clean

run: runtime ## Run broker, producer and consumer in one terminal (Ctrl-C stops all)
	$(BIN)/coffee-orders dev

test: setup tools contract-tools bench-tools check ## Lint, type-check, contract checks, the unit tests, then the tests against real Kafka
	$(BIN)/pytest tests/unit
	$(BIN)/pytest tests/integration

unit: setup ## The unit tests alone: no broker, no Java, no Go; seconds
	$(BIN)/pytest tests/unit

bench: setup bench-tools ## The whole benchmark (~25 min): own broker, services, load; updates docs/benchmarks.*
	$(BIN)/python -m bench.run --write-docs

# The virtualenv: `runtime` has what running the services needs, `setup` adds the dev extras.
runtime: $(VENV)/.runtime
setup: $(VENV)/.installed

# The Kafka jars (first run only) are fetched by the system's python3 while pip works: both mostly
# wait on the network. Packages are byte-compiled on first import, not all at install time.
$(VENV)/.runtime: pyproject.toml
	@echo "installing the runtime packages into $(VENV)/ (the Kafka jars alongside, if not cached)"
	@$(PYTHON) tooling/localkafka/coffee_orders_localkafka/jars.py & jars=$$!; \
	trap 'kill $$jars 2>/dev/null' INT TERM; \
	{ test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } && \
	$(BIN)/pip install --quiet --upgrade pip && \
	$(BIN)/pip install --quiet --no-compile -e .; \
	installed=$$?; wait $$jars; exit $$installed
	touch $@

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.runtime

tools: $(TOOLS)/bin/grpcurl ## grpcurl (Go), kcat and prometheus (apt): the README's demo and the tests use them
	scripts/ensure_kcat.sh
	scripts/ensure_prometheus.sh

contract-tools: $(TOOLS)/npm/node_modules/.bin/buf $(TOOLS)/bin/protoc-gen-go $(TOOLS)/bin/protoc-gen-go-grpc

# Only the benchmark (and its smoke test) needs these; bench/peers builds on first use.
bench-tools: $(TOOLS)/bin/ghz $(TOOLS)/bin/hey

$(TOOLS)/bin/hey:
	GOBIN=$(TOOLS)/bin go install github.com/rakyll/hey@$(HEY_VERSION)

$(TOOLS)/bin/grpcurl:
	GOBIN=$(TOOLS)/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

$(TOOLS)/bin/ghz:
	GOBIN=$(TOOLS)/bin go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

$(TOOLS)/bin/protoc-gen-go:
	GOBIN=$(TOOLS)/bin go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS)/bin/protoc-gen-go-grpc:
	GOBIN=$(TOOLS)/bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

$(TOOLS)/npm/node_modules/.bin/buf:
	npm install --silent --no-fund --no-audit --prefix $(TOOLS)/npm @bufbuild/buf@$(BUF_VERSION)

check: lint typecheck contract rules

rules: ## The alerting rules are valid and their unit tests (synthetic series) pass
	scripts/ensure_prometheus.sh
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts.test.yml

contract: setup contract-tools ## buf lint/format/breaking, and generated code matches protos/
	buf lint
	buf format --diff --exit-code
	buf breaking --against $(RELEASED_CONTRACT)
	rm -rf $(TOOLS)/gen-check && buf generate --output $(TOOLS)/gen-check
	diff -r -x __pycache__ $(TOOLS)/gen-check/gen/python gen/python
	diff -r $(TOOLS)/gen-check/gen/go gen/go
	cd gen && go vet ./... && test -z "$$(gofmt -l .)"
	cd clients/go && go vet ./... && test -z "$$(gofmt -l .)"
	cd bench/streamload && go vet ./... && test -z "$$(gofmt -l .)"
	cd bench/peers && go vet ./... && test -z "$$(gofmt -l .)"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy services clients/python/coffee_orders_cli clients/python/coffee_orders_client tooling scripts tests bench

protos: setup contract-tools ## Regenerate gen/ (the committed Python and Go code) from protos/
	buf generate

release-contract: contract-tools ## Record protos/ as released: later changes must stay compatible with it
	buf build --exclude-source-info -o $(RELEASED_CONTRACT).tmp.json
	$(BIN)/python -c "import json,sys; p=sys.argv[1]; json.dump(json.load(open(p+'.tmp.json')), open(p,'w'), indent=1); open(p,'a').write('\\n')" $(RELEASED_CONTRACT)
	rm -f $(RELEASED_CONTRACT).tmp.json

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
