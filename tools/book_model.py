"""Rebuild the book model shipped in gpt2lib/models/ (`make book-model`): the seeded CPU run of
gpt2lib.book.BOOK_TRAIN, about 75 s on two cores (measured). It prints the new metrics beside the shipped
ones; on another processor the bytes differ, the validation loss agrees to about two decimals (the
tolerance tests/test_book.py holds a rebuild to). Commit the folder only when the model was meant to
change (a new corpus, shape or schedule): every chapter's outputs come from it.

Usage: python tools/book_model.py [OUT]   (default: gpt2lib/models/book-python-docs, replaced in place)
"""
from __future__ import annotations

import sys

from gpt2lib.book import BOOK_MODEL_DIR, book_model_info, train_book_model


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else BOOK_MODEL_DIR
    before = book_model_info()["final"] if BOOK_MODEL_DIR.is_dir() else None
    after = train_book_model(out)
    for label, m in (("shipped before", before), ("rebuilt now", after)):
        if m:
            print(f"{label:>14}: val loss {m['val_loss']:.4f}, {m['bits_per_byte']:.4f} bits per byte "
                  f"({m['seconds']:.0f} s on the {m['device']})")
    print(f"written to {out}; compare its SHA256SUMS with the shipped one to see whether the bytes changed")


if __name__ == "__main__":
    main()
