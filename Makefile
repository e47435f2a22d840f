# Set-up and everyday commands. `make demo` runs the main job, `make test` runs all the tests,
# `make test-fast` the fast tier (pytest -m "not slow").
# Each creates .venv and installs the project with its dev extras on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint bench screenshots

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/posthog-otel demo

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check posthog_otel instrumentors tests benchmarks examples
	$(VENV)/bin/mypy --strict posthog_otel instrumentors

bench: $(STAMP)
	$(PY) -m benchmarks

# PNGs of the viewer's main pages (docs/screenshots/), from a sink filled by the demo, in the
# headless Chromium the browser tests use (Debian: apt-get install chromium chromium-driver)
screenshots: $(STAMP)
	$(PY) -m tests.support.screenshots docs/screenshots
