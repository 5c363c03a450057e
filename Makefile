# alertq: `make run` starts the whole stack on this machine, `make test` runs the whole suite.
# Both create the virtualenv and install alertq into it first.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Fault tests mostly wait on brokers and timers, so more workers than cores pays off.
TEST_WORKERS ?= 4

.PHONY: help install run test lint typecheck unit bench broker clean

help:
	@echo "make run    - install and start the whole stack, the two-way loop included (alertq up)"
	@echo "make unit   - the fast tier (tests/unit: pure functions, no broker), in seconds"
	@echo "make test   - install, then lint, type-check, the fast tier and the whole test suite"
	@echo "make bench  - benchmarks in tests/perf, printed as ratios against same-run baselines"
	@echo "make clean  - remove the virtualenv and ./var"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

broker:
	@deploy/local/ensure-broker

# No `alertq topology declare` first: every part declares what it needs at start, with the settings
# `alertq up` fills in (its demo routing file among them); a declare without them would retire the
# escalator's queue the demo escalation is about to use.
run: install broker
	exec $(BIN)/alertq up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

# The fast tier: no services, a few seconds; run it on every change.
unit: install
	$(BIN)/pytest tests/unit -p no:xdist -q

# The slow suite leaves out tests/unit: `unit` ran it just before.
test: lint typecheck unit broker
	$(BIN)/pytest -n $(TEST_WORKERS) --dist load -m "not perf" --ignore=tests/unit $(PYTEST_ARGS)

bench: install broker
	$(BIN)/pytest tests/perf -m perf -p no:xdist -s $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
