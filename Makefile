# Developer interface. Every target creates .venv and installs the package with its dev extras when missing or
# stale (pyproject.toml newer than the stamp), so `make demo` and `make test` are the whole set-up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-install

.PHONY: demo test test-fast lint bench clean venv browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/stadtpuls demo $(DEMO_ARGS)

# Debian chromium for the browser tests (as root; `make test` itself installs nothing system-wide and skips the
# browser tests where chromium is missing).
browser:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Between edits: without the slow tests (reliability suites, drills, simulated weeks) and the browser tests, in
# TEST_WORKERS processes (pytest-xdist; each worker creates its own session database and project broker), with
# Hypothesis's `dev` profile (a tenth of the examples; `make test` runs them all). Python keeps its bytecode caches
# (`__pycache__/`, ignored by git) even where PYTHONDONTWRITEBYTECODE is set: the test modules as pytest rewrites them
# and the hub's modules are compiled once, not again in every run, worker and command started by a test.
# Three workers on two cores: a test often waits (a process it started, the broker, a checkpoint) while another computes.
TEST_WORKERS ?= 3
HYPOTHESIS_PROFILE ?= dev
test-fast: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow and not browser" --hypothesis-profile=$(HYPOTHESIS_PROFILE) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var artifacts .pytest_cache .mypy_cache .ruff_cache .hypothesis
