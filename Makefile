# Set-up and everyday commands. `make demo` runs the main job, `make test` runs the tests.
# Both create .venv and install the project with its dev extras on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench

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

lint: $(STAMP)
	$(VENV)/bin/ruff check posthog_otel instrumentors tests benchmarks examples
	$(VENV)/bin/mypy --strict posthog_otel instrumentors

bench: $(STAMP)
	$(PY) -m benchmarks
