# netfleet: `make run` serves an embedded instance; `make test` runs the whole suite against real servers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install run test lint bench lock clean

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/netfleet migrate --noinput
	$(BIN)/netfleet bootstrap
	@echo "netfleet: serving on http://$(HOST):$(PORT)/ (admin UI at /admin/, API docs at /api/v1/docs/)"
	exec $(BIN)/netfleet serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	scripts/system-deps.sh test
	$(BIN)/ruff check .
	$(BIN)/netfleet makemigrations --check --dry-run >/dev/null
	$(BIN)/python -m netfleet.testing.servers -- $(BIN)/python -m pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

bench: install
	scripts/system-deps.sh bench
	$(BIN)/python -m bench

# Re-pin the lock file from pyproject.toml's ranges (then commit requirements.lock).
lock:
	rm -rf /tmp/netfleet-lock && $(PYTHON) -m venv /tmp/netfleet-lock
	/tmp/netfleet-lock/bin/pip install --quiet -e '.[test]'
	/tmp/netfleet-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
