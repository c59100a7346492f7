# Every target that needs the environment creates it first: a .venv in the checkout,
# with torch pinned to its CPU build and installed before anything else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUNDLES ?= var/bundles
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo build serve test test-fast lint bench load screenshots clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

## The main job on the embedded default: build the sample corpus with the bundled model, then serve it
## on loopback, with the demo's API key for writes unless RELATED_API_KEYS is set.
demo: build
	RELATED_API_KEYS="$${RELATED_API_KEYS:-demo-key}" RELATED_CONSOLE="$${RELATED_CONSOLE:-true}" \
	  $(BIN)/related-articles serve --bundles $(BUNDLES) --host $(HOST) --port $(PORT)

build: $(STAMP)
	$(BIN)/related-articles build --bundles $(BUNDLES)

serve: $(STAMP)
	$(BIN)/related-articles serve --bundles $(BUNDLES) --host $(HOST) --port $(PORT)

## Every test (what CI runs).
test: $(STAMP)
	$(BIN)/python -m pytest

## The fast tier: pure logic with the deterministic fake encoder, none of the tests marked as needing the
## real models, servers, chromium, PostgreSQL or the shared data sets, nor the slow ones (pyproject.toml).
FAST := not model and not server and not browser and not postgres and not shared_data and not slow
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "$(FAST)"

lint: $(STAMP)
	$(BIN)/ruff check embeddings service tests benchmarks
	$(BIN)/ruff format --check embeddings service tests benchmarks
	$(BIN)/mypy

## The quick set of benchmarks, on the demo bundle and the sample corpus (each prints and writes JSON).
bench: $(STAMP)
	mkdir -p var/bench
	$(BIN)/python -m benchmarks.related_latency --bundles $(BUNDLES) --json var/bench/latency.json
	$(BIN)/python -m benchmarks.embedding_throughput --input embeddings/data/sample_articles.jsonl \
	  --headlines 147 --articles 64 --json var/bench/embedding.json
	$(BIN)/python -m benchmarks.index_scale --bundles $(BUNDLES) --sizes 100000 --json var/bench/index.json

load: $(STAMP)
	$(BIN)/python -m benchmarks.load_run --bundles $(BUNDLES)

## PNGs of the HTML list, the widget on a page and the console, in Arabic and English (Debian's chromium).
screenshots: build
	$(BIN)/python -m benchmarks.screenshots --bundles $(BUNDLES) --out var/screenshots

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
