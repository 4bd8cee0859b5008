"""Find the Chromium-family browser the page checks drive. Used by tests/browser_checks.py and by
tools/setup.sh (`python tools/find_chromium.py` prints its path, or nothing); it imports nothing of
gpt2lib's or of the tests'."""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping

# Where a Chromium-family browser lives when no variable names one: commands looked up on PATH, then
# the usual application paths (macOS has no command on PATH for its apps).
CHROMIUM_COMMANDS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_APPS = ("/Applications/Chromium.app/Contents/MacOS/Chromium",
                 "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
CHROMIUM_VARIABLES = ("CHROMIUM", "BROWSER_PATH")


def find_chromium(environ: Mapping[str, str] | None = None) -> str | None:
    """The browser the page checks drive: ``$CHROMIUM`` or ``$BROWSER_PATH`` (a path or a command
    name) when set, else the first of :data:`CHROMIUM_COMMANDS` on PATH, else a macOS app; None when
    there is none. A variable that names nothing raises, so that a typo is not silently replaced."""
    env = os.environ if environ is None else environ
    for var in CHROMIUM_VARIABLES:
        value = env.get(var)
        if value:
            found = value if os.path.isfile(value) and os.access(value, os.X_OK) else shutil.which(value, path=env.get("PATH"))
            if not found:
                raise FileNotFoundError(f"{var}={value!r} is not an executable browser: fix or unset it")
            return found
    for name in CHROMIUM_COMMANDS:
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return found
    return next((app for app in CHROMIUM_APPS if os.path.isfile(app)), None)


if __name__ == "__main__":
    try:
        print(find_chromium() or "")
    except FileNotFoundError as exc:
        print(f"find_chromium: {exc}", file=sys.stderr)
        sys.exit(1)
