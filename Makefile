# The README's two commands: `make reproduce` (main job) and `make test`.
# Every target creates .venv when it is missing and installs the project into it once;
# the install is redone only when pyproject.toml changes (the stamp below).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
# The torch build CI tests. Installed only when the venv has no torch yet, so a CUDA build
# already there (a workstation, Colab) is kept. Override: make test TORCH='torch==2.x'.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.layersim-installed
BOOK_FLAGS ?= --all -W --keep-going

.PHONY: install reproduce book test browser-test lint clean distclean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import torch' 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[pipeline,book,dev,offline]"
	@touch $@

## reproduce: the main job: run the default (demo) preset, resuming and skipping runs whose
## results are already in results/, then build the book from results/. The demo and synthetic
## presets hold the seeds the book ships (0, 1, 2); SEEDS=0 (or any list) runs others.
PRESET ?= demo
SEEDS ?=
reproduce: $(STAMP)
	$(BIN)/python -m layersim run --preset $(PRESET) $(if $(strip $(SEEDS)),--seeds $(SEEDS))
	$(MAKE) book

## book: build the Jupyter Book (offline) into _build/html; a warning or a failing cell fails it.
book: $(STAMP)
	$(BIN)/jupyter-book build . $(BOOK_FLAGS)
	@echo "Book: $(CURDIR)/_build/html/index.html"

## test: lint, unit tests, a strict book build, and the built book in a headless browser.
test: lint $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) book
	$(MAKE) browser-test

## browser-test: open every page of the built book (_build/html) in headless Chromium (the system
## one, or LAYERSIM_CHROMIUM=/path/to/chrome); needs `make book` first. When no Chromium is found,
## tools/ensure-chromium installs Debian's `chromium` where it can (root or passwordless sudo).
browser-test: $(STAMP)
	@bash tools/ensure-chromium
	$(BIN)/python -m pytest -m book tests/browser

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports  # the layers of .importlinter: each package imports only those below it

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
