# Sourced by the scripts that build, test or execute the book (and by the Makefile's recipes through them):
# the one place that says which venv, and that builds and tests never touch the network.
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
export VENV
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
export PYDEVD_DISABLE_FILE_VALIDATION=1
# The checkout-local cache: token arrays and tokenizers the chapters build are kept here, not in ~.
export GPT2LIB_CACHE=${GPT2LIB_CACHE:-$PWD/.gpt2lib_cache}
if [ "${BOOK_ONLINE:-0}" = 1 ]; then
  # the publishing workflow: the chapters take their online branches (OpenAI's GPT-2 from the hub)
  export GPT2LIB_OFFLINE=0 HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0
else
  export GPT2LIB_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  # An empty Hugging Face cache of the checkout's own: a GPT-2 cached elsewhere on the machine must not
  # switch the chapters to their OpenAI path, whose outputs differ from the committed ones.
  export HF_HUB_CACHE="$GPT2LIB_CACHE/huggingface-hub"
fi
