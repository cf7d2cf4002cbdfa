# Gatehouse: `make run` for the demo portal, `make test` for the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/gatehouse
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-postgres test-sqlite lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo
	@bin/run-demo "$(BIN)" "$(HOST)" "$(PORT)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -r portal audit registry releases -x '*/migrations/*'

test: lint
	$(BIN)/python manage.py makemigrations --check --dry-run
	@bin/test-on-databases "$(BIN)" "$(PG_URL)"

bench: install
	@bin/bench "$(BIN)" "$(PG_URL)"

clean:
	rm -rf $(VENV) var staticfiles

# Full-page PNGs of the main pages, taken by the browser journeys (tests/browser/screenshots.py).
.PHONY: screenshots
screenshots: install
	GATEHOUSE_SCREENSHOTS=docs/screenshots CELERY_BROKER_URL=memory:// GATEHOUSE_VAR_DIR="$(CURDIR)/var/test" \
		env -u DATABASE_URL $(BIN)/pytest tests/browser/test_journeys.py -q
