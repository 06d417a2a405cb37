# The two commands of the README: `make run` starts the local stack,
# `make test` runs every test. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test check-python deps test-deps ferretdb system lint clean

run: deps
	@if [ -z "$$MONGODB_URL" ]; then deploy/local/install-ferretdb.sh; fi
	@if [ -z "$$REDIS_URL" ]; then deploy/local/install-system.sh redis-server; fi
	deploy/local/run.sh

test: test-deps
	@if [ -z "$$MONGODB_URL" ]; then deploy/local/install-ferretdb.sh; fi
	deploy/local/install-system.sh redis-server chromium
	$(VENV)/bin/pytest

check-python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 or newer is required: install python3 (https://www.python.org/downloads/)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is required, found $$($(PYTHON) --version)" >&2; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { echo "The venv module is missing: install python3-venv" >&2; exit 1; }

$(VENV)/bin/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

deps: $(VENV)/bin/python
	@if [ ! -f $(STAMP) ] || [ pyproject.toml -nt $(STAMP) ]; then \
		$(VENV)/bin/pip install -q -e . && touch $(STAMP); fi

test-deps: $(VENV)/bin/python
	@if [ ! -f $(STAMP).test ] || [ pyproject.toml -nt $(STAMP).test ]; then \
		$(VENV)/bin/pip install -q -e '.[test]' && touch $(STAMP) $(STAMP).test; fi

lint: test-deps
	$(VENV)/bin/ruff check services tests
	$(VENV)/bin/ruff format --check services tests

clean:
	rm -rf var test-artifacts
