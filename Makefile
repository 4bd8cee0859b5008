# The two commands that matter: `make book` and `make test`. Both set themselves up first.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
BUILD := book/_build
# Builds and tests never touch the network: chapters take their offline path.
export GPT2LIB_OFFLINE := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PATH := $(abspath $(BIN)):$(PATH)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# The book's trained model, tokenizer and token arrays are cached inside the checkout, so that a build
# or a test run depends on nothing left elsewhere on the machine (a fresh clone trains them once).
export GPT2LIB_CACHE ?= $(abspath .gpt2lib_cache)
JB_FLAGS := --all -W -n --keep-going --path-output book

.PHONY: setup book test test-lib test-notebooks test-book test-browser lab serve clean

setup:
	@bash tools/setup.sh

book: setup
	@bash tools/build_book.sh
	@echo "The book is built: open file://$(abspath $(BUILD))/html/index.html (or run 'make serve')"

test: setup
	@bash tools/run_tests.sh

# The parts of `make test`, for when you work on one of them.
test-lib: setup
	$(BIN)/python -m pytest tests -m "not browser" -q
test-notebooks: setup
	$(BIN)/python -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg chapters -q
test-book: setup
	@bash tools/build_book.sh
test-browser: setup
	$(BIN)/python -m pytest tests -m browser -q

lab: setup
	$(BIN)/jupyter lab chapters

serve:
	@test -d $(BUILD)/html || { echo "no built book: run 'make book' first"; exit 1; }
	$(BIN)/python -m http.server --directory $(BUILD)/html 8000

clean:
	rm -rf $(BUILD)
