"""`python -m gpt2lib.exercises [CHAPTER]`: which exercises you have passed; `--reset` forgets them."""
from __future__ import annotations

import argparse

from . import reset_progress, show_progress
from .progress import progress_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpt2lib.exercises", description=__doc__)
    parser.add_argument("chapter", nargs="?", type=int, help="one chapter (1-9); all chapters when omitted")
    parser.add_argument("--reset", action="store_true", help="forget every recorded attempt")
    args = parser.parse_args(argv)
    if args.chapter is not None and not 1 <= args.chapter <= 9:
        parser.error(f"chapter must be between 1 and 9, got {args.chapter}")
    if args.reset:
        reset_progress()
        print(f"progress reset ({progress_file()})")
        return 0
    show_progress(args.chapter)
    print(f"(stored in {progress_file()}, on this machine only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
