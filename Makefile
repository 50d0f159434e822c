# One target per verb. CI calls `make test` only (see .ci/run).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help install tools browser run test test-fast lint bench deploy plan destroy package clean

help:
	@echo "make run      start the local stack (collect on http://127.0.0.1:8080)"
	@echo "make test     install dev deps and run the whole test suite"
	@echo "make bench    run the benchmarks and print figures"
	@echo "make lint     ruff + terraform fmt"
	@echo "make deploy   package the functions and terraform apply (needs gcloud, terraform, credentials)"
	@echo "make plan     terraform plan; without credentials against the stand-in provider (docs/gcp.md)"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# test tools whose pins clash with ours (checkov, bqemulator), each in its own venv under .venv/tools
tools: $(STAMP)
	scripts/tools.sh

# headless Chromium for the dashboard and site-tag browser tests (Debian's package; needs root)
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

run: $(STAMP)
	$(VENV)/bin/tagpipe run

test: $(STAMP) tools browser
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive terraform; fi

bench: $(STAMP)
	$(PY) -m benchmarks

package:
	scripts/package.sh

# without Google credentials: init/validate/plan against the stand-in google provider (scripts/tfstandin)
plan:
	scripts/deploy.sh plan

deploy:
	scripts/deploy.sh deploy

destroy:
	scripts/deploy.sh destroy

clean:
	rm -rf .tagpipe .pytest_cache
