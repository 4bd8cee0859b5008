"""``python -m gpt2lib``: see :mod:`gpt2lib.cli`."""
from .cli import main

raise SystemExit(main())
