# The two commands that matter: `make book` and `make test`. Both set themselves up first.
# Every target works on a fresh clone and in any order; `make test-lib`, `make test-chapters` and `make lab`
# need no npm. The scripts in tools/ set the rest of the environment (tools/env.sh: offline, the
# checkout's own caches).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
BUILD := book/_build
# The scripts read VENV (and PYTHON, when given, the interpreter that makes the venv) from here.
export VENV
ifdef PYTHON
export PYTHON
endif
# What `make test-lib` runs (e.g. PYTEST_ARGS="tests/test_model.py -x").
PYTEST_ARGS ?= tests
ENV := source tools/env.sh &&

.PHONY: setup setup-book setup-colab colab-packages lock book test test-lib test-chapters test-portable test-reader test-browser test-colab lab serve clean book-model

# The Python environment: torch, gpt2lib and the extras in pyproject.toml.
setup:
	@bash tools/setup.sh python

# The above, plus what the HTML needs (MathJax and the widget scripts, fetched once with npm) and Chromium.
setup-book:
	@bash tools/setup.sh book

# requirements.txt, the lock that the two above install, again from pyproject.toml (needs PyPI). It keeps
# every pin that is still allowed; `make lock UPGRADE=1` moves each to the newest release allowed.
lock:
	@UPGRADE=$(UPGRADE) bash tools/lock.sh

book: setup-book
	@bash tools/build_book.sh
	@echo "The book is built: open file://$(abspath $(BUILD))/html/index.html (or run 'make serve')"

test: setup-book
	@bash tools/run_tests.sh

# The parts of `make test`, for when you work on one of them.
test-lib: setup
	@$(ENV) "$$PY" -m pytest $(PYTEST_ARGS) -m "not browser and not colab" -p no:cacheprovider -q
# Every chapter executed once by nbval; the cells marked `# NBVAL_CHECK_OUTPUT` compared with the committed
# outputs (tests/nbval_sanitize.cfg). One chapter: TEST_ARGS="-k 05_1" (or pytest --nbval-lax chapters/X.ipynb
# with the options in tools/run_tests.sh, as CONTRIBUTING.md shows).
test-chapters: setup
	@NBVAL_ONLY=1 bash tools/run_tests.sh
# The same with PyTorch's CPU kernels forced to other instruction sets than this machine's best: a checked
# output that depends on how a processor rounds fails here (the GitHub workflow runs this too).
# The book model's rebuild too, with the plain kernels: the same loss from other bytes.
test-portable: setup
	@ATEN_CPU_CAPABILITY=default NBVAL_ONLY=1 bash tools/run_tests.sh
	@ATEN_CPU_CAPABILITY=avx2 NBVAL_ONLY=1 bash tools/run_tests.sh
	@$(ENV) ATEN_CPU_CAPABILITY=default "$$PY" -m pytest tests/test_book.py -k rebuild -p no:cacheprovider -q
# The reader's path: the chapters that run the reader's code, with every exercise solved by its solution in the
# learner's cell (tools/reader_path.py), under nbval: the checked outputs must not change. It executes those
# chapters a second time, so it is not part of `make test` (the workflow runs it as a job of its own).
test-reader: setup
	@READER_PATH=1 bash tools/run_tests.sh
# The built pages in Chromium (the book is built first if it is not).
test-browser: setup-book
	@test -f $(BUILD)/html/index.html || bash tools/build_book.sh
	@$(ENV) "$$PY" -m pytest tests -m browser -p no:cacheprovider -q
# The chapters with an OpenAI path (and one without) alone on a simulated Colab (tests/test_colab.py), twice:
# on Colab's own package versions and Python (make setup-colab), and on the oldest supported transformers.
# (`make test` runs the second only: the first needs a 3 GB download of PyPI's torch.)
test-colab: setup-book setup-colab
	@$(ENV) COLAB_CONFIGS=colab,oldest "$$PY" -m pytest tests -m colab -p no:cacheprovider -q

# Colab's runtime for the simulated Colab: the Python closest to Colab's, with Colab's versions of what the
# chapters import (tools/colab_runtime.py, from the committed tools/colab/pip-freeze.txt; needs PyPI once).
setup-colab: setup
	@$(ENV) "$$PY" tools/colab_runtime.py build --out "$$VENV/colab-runtime"

# tools/colab/pip-freeze.txt again from Colab's published list (googlecolab/backend-info; needs GitHub).
colab-packages: setup
	@$(ENV) "$$PY" tools/colab_runtime.py refresh

# As root (a container, CI) JupyterLab refuses to start without --allow-root.
lab: setup
	$(BIN)/python -m jupyterlab chapters $(if $(filter 0,$(shell id -u)),--allow-root,)

serve:
	@test -f $(BUILD)/html/index.html || $(MAKE) --no-print-directory book
	$(BIN)/python -m http.server --directory $(BUILD)/html 8000

# Train the book model again (the seeded CPU run, about 75 s on 2 cores) into gpt2lib/models/, replacing the
# shipped one (OUT=folder writes it there instead); tools/book_model.py prints its metrics beside the shipped ones.
book-model: setup
	@$(ENV) "$$PY" tools/book_model.py $(OUT)

clean:
	rm -rf $(BUILD)
