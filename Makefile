# Every target that needs the environment creates it first: a .venv in the checkout,
# with torch pinned to its CPU build and installed before anything else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUNDLES ?= var/bundles
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo build serve test test-fast lint bench load docs screenshots clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,ray,adapt]'
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

## The quick set of benchmarks, on the demo bundle (`make build`) and the sample corpus (each prints and
## writes JSON to var/bench). BENCH_SMOKE=1: the same benchmarks at tiny sizes, to prove that each still
## runs (CI), not to measure; its JSON goes to var/bench/smoke.
ifeq ($(BENCH_SMOKE),1)
BENCH_OUT := var/bench/smoke
BENCH_LATENCY := --requests 60 --clients 2
BENCH_EMBEDDING := --headlines 16 --articles 8 --repeats 1
BENCH_INDEX := --sizes 2000 --searches 50
else
BENCH_OUT := var/bench
BENCH_LATENCY := --requests 2000 --clients 4
BENCH_EMBEDDING := --headlines 147 --articles 64 --repeats 3
BENCH_INDEX := --sizes 100000 --searches 300
endif

bench: $(STAMP)
	mkdir -p $(BENCH_OUT)
	$(BIN)/python -m benchmarks.related_latency --bundles $(BUNDLES) $(BENCH_LATENCY) --cache \
	  --json $(BENCH_OUT)/latency.json
	$(BIN)/python -m benchmarks.embedding_throughput --input embeddings/data/sample_articles.jsonl \
	  $(BENCH_EMBEDDING) --json $(BENCH_OUT)/embedding.json
	$(BIN)/python -m benchmarks.index_scale --bundles $(BUNDLES) $(BENCH_INDEX) --json $(BENCH_OUT)/index.json

load: $(STAMP)
	$(BIN)/python -m benchmarks.load_run --bundles $(BUNDLES)

## docs/settings.md, generated from the settings class (embeddings/settings.py); a test fails when it is stale.
docs: $(STAMP)
	$(BIN)/python -m embeddings.settings_doc > docs/settings.md.tmp
	mv docs/settings.md.tmp docs/settings.md

## The PNGs docs/ shows: the HTML list, the widget on a page and the console, in Arabic and English
## (Debian's chromium), into docs/screenshots/.
screenshots: build
	$(BIN)/python -m benchmarks.screenshots --bundles $(BUNDLES) --out docs/screenshots

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
