# The two commands that matter: `make book` and `make test`. Both set themselves up first.
# Every target works on a fresh clone and in any order; `make test-lib` and `make lab` need no npm.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
BUILD := book/_build
# The scripts read VENV (and PYTHON, when given, the interpreter that makes the venv) from here.
export VENV
ifdef PYTHON
export PYTHON
endif
# Builds and tests never touch the network: chapters take their offline path.
export GPT2LIB_OFFLINE := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PATH := $(abspath $(BIN)):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# The book's trained model, tokenizer and token arrays are cached inside the checkout, so that a build
# or a test run depends on nothing left elsewhere on the machine (a fresh clone trains them once).
export GPT2LIB_CACHE ?= $(abspath .gpt2lib_cache)
# What `make test-lib` runs (e.g. PYTEST_ARGS="tests/test_model.py -x").
PYTEST_ARGS ?= tests

.PHONY: setup setup-book book test test-lib test-notebooks test-book test-browser test-colab lab serve clean release-assets

# The Python environment: torch, gpt2lib and the extras in pyproject.toml.
setup:
	@bash tools/setup.sh python

# The above, plus what the HTML needs (MathJax and the widget scripts, fetched once with npm) and Chromium.
setup-book:
	@bash tools/setup.sh book

book: setup-book
	@bash tools/build_book.sh
	@echo "The book is built: open file://$(abspath $(BUILD))/html/index.html (or run 'make serve')"

test: setup-book
	@bash tools/run_tests.sh

# The parts of `make test`, for when you work on one of them.
test-lib: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS) -m "not browser and not book and not colab" -p no:cacheprovider -q
# The book build, every chapter executed afresh (errors and warnings fail it).
test-book: setup-book
	@BOOK_FRESH=1 bash tools/build_book.sh
# That build, then each executed chapter against its committed outputs.
test-notebooks: test-book
	$(BIN)/python -m pytest tests -m book -p no:cacheprovider -q
# The built pages in Chromium (the book is built first if it is not).
test-browser: setup-book
	@test -f $(BUILD)/html/index.html || bash tools/build_book.sh
	$(BIN)/python -m pytest tests -m browser -p no:cacheprovider -q

# Every chapter alone on a simulated Colab (tests/test_colab.py): a fresh VM each, offline.
test-colab: setup-book
	$(BIN)/python -c "from gpt2lib.book import book_model; book_model(progress=False)"
	$(BIN)/python -m pytest tests -m colab -p no:cacheprovider -q

# As root (a container, CI) JupyterLab refuses to start without --allow-root.
lab: setup
	$(BIN)/python -m jupyterlab chapters $(if $(filter 0,$(shell id -u)),--allow-root,)

serve:
	@test -f $(BUILD)/html/index.html || $(MAKE) --no-print-directory book
	$(BIN)/python -m http.server --directory $(BUILD)/html 8000

# The book model's release asset (the seeded CPU run) into dist/release-assets/, with its sha256.
release-assets: setup
	$(BIN)/python tools/release_assets.py dist/release-assets

clean:
	rm -rf $(BUILD)
