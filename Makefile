# Two commands matter: `make run` (the product on SQLite) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/patronage_bench

.PHONY: run test test-sqlite test-postgres lint format serve worker bench install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	PORT=$(PORT) $(BIN)/patronage run

serve: $(STAMP)
	PORT=$(PORT) $(BIN)/patronage serve

worker: $(STAMP)
	$(BIN)/patronage worker

# The whole suite on SQLite, then again on PostgreSQL when PATRONAGE_TEST_DATABASE_URL is set.
test: $(STAMP)
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$PATRONAGE_TEST_DATABASE_URL" ]; then $(MAKE) --no-print-directory test-postgres; \
	else echo "PATRONAGE_TEST_DATABASE_URL not set: skipping the PostgreSQL run"; fi

test-sqlite: $(STAMP)
	DATABASE_URL= $(BIN)/pytest -q $(PYTEST_ARGS)

test-postgres: $(STAMP)
	DATABASE_URL=$$PATRONAGE_TEST_DATABASE_URL $(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy patronage bench

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var/*.sqlite3*
