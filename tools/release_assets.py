"""Build the release asset of the book's model (the CPU run, seeded) into dist/release-assets/, and say
whether its sha256 is the one gpt2lib.book expects. Publish the file as a release asset of the
repository (see gpt2lib.book.BOOK_ASSETS_URL); a changed configuration prints the line to add to
BOOK_ASSET_SHA256. Run through `make release-assets` (offline, in the checkout's cache)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("GPT2LIB_DEVICE", "cpu")  # the published model is the CPU run, whatever this machine has

from gpt2lib import book  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/release-assets")
    path, digest = book.pack_book_model(out)
    key = book.book_key("cpu")
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)\nsha256 {digest}\nupload it to {book.BOOK_ASSETS_URL}/{path.name}")
    expected = book.BOOK_ASSET_SHA256.get(key)
    if expected == digest:
        print("matches gpt2lib.book.BOOK_ASSET_SHA256: readers online will download this file instead of training")
        return 0
    print(f"gpt2lib.book.BOOK_ASSET_SHA256 has {expected!r} for key {key}; if this build is the one to publish, set\n"
          f'    "{key}": "{digest}",')
    return 1


if __name__ == "__main__":
    sys.exit(main())
