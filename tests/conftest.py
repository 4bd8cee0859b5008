"""Shared test set-up: no network, a private progress record and cache for every test session."""
from __future__ import annotations

import os
import tempfile

# Set before gpt2lib is imported anywhere, so that nothing in a test tries the network or writes
# into the reader's own cache or exercise progress.
os.environ.setdefault("GPT2LIB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_tmp = tempfile.mkdtemp(prefix="gpt2lib-tests-")
os.environ["GPT2LIB_PROGRESS"] = os.path.join(_tmp, "progress.json")
