# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench bench-batch browser openapi

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python manage.py migrate --noinput
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m config.devrun

# Debian's Chromium for the browser tests (no browser download at run time). Without
# root or apt the browser tests are skipped, with a message saying how to install it.
browser:
	@command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || \
	  (apt-get install -y chromium >/dev/null 2>&1 || \
	   (apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1)) || \
	  echo "could not install chromium (apt-get install -y chromium); browser tests will be skipped"

test: install browser
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_ARGS)

# The four load scenarios against a locally started service, then the BullMQ
# reference when ../shared's harness is there (REF=0: not); prints one table.
bench: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bench/run.sh bench/results/bench-$$(date +%Y%m%d-%H%M%S).jsonl
	$(MAKE) bench-batch

# POST /api/schedule-batch alone: messages/s scheduled (BATCHES batches of 1,000).
bench-batch: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python bench/batch.py --batches $(or $(BATCHES),20)

# docs/openapi.yaml: the schema /api/schema serves (tests/test_docs.py checks they match).
openapi: install
	$(BIN)/python manage.py spectacular --file docs/openapi.yaml

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
