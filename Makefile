# Gatehouse: `make run` for the demo portal, `make test` for the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
PG_URL ?= postgres://postgres@127.0.0.1:5432/gatehouse
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The portal itself needs only the runtime packages; the suite also needs the test tools, the
# optional directory sign-in (python-ldap builds against libldap) and Debian's Chromium and slapd.
$(RUNTIME): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(DEV): requirements.txt requirements-ldap.txt requirements-dev.txt | $(BIN)/python
	@bin/system-packages
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# The OpenID provider the single sign-on tests start (tests/oidc/provider.js), from its lock file.
OIDC_PROVIDER := tests/oidc/node_modules/.package-lock.json
$(OIDC_PROVIDER): tests/oidc/package.json tests/oidc/package-lock.json
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(DEV) $(OIDC_PROVIDER)

run: $(RUNTIME)
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo
	@bin/run-demo "$(BIN)" "$(HOST)" "$(PORT)"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -r portal audit organisation registry releases integrations -x '*/migrations/*'
	$(BIN)/lint-imports --no-cache --no-logo

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
