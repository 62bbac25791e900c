"""Copy the screenshots the docs show from the browser tests' output into docs/screenshots/.

`make screenshots` runs the dashboard's and the portal's browser tests (which save a screenshot of
each view in test-output/screenshots/), then this, so the pictures of docs/dashboard.md are always of
the page as the tests last saw it, never retouched by hand.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.conftest import OUTPUT

DOCS = Path(__file__).parent.parent / "docs" / "screenshots"
# Every picture docs/dashboard.md shows (the dashboard, and embedding it).
IN_DOCS = (
    "endpoints",
    "add-webhook",
    "endpoint-history",
    "endpoint-failing",
    "endpoint-throttled",
    "ordered-endpoint",
    "delivery-retried",
    "event",
    "failed-deliveries",
    "retry-all-shown",
    "test-event",
    "secret-rotated",
    "replay-running",
    "read-only-endpoint",
    "mobile-endpoints",
    "long-url-list-390",
    "temporal-down",
    "embedded-delivery",
    "embedded-session-ended",
    "embedded-white-label",
)


def main() -> int:
    taken = OUTPUT / "screenshots"
    missing = [name for name in IN_DOCS if not (taken / f"{name}.png").exists()]
    if missing:
        sys.stderr.write(f"not taken by the tests (run them first): {', '.join(missing)}\n")
        return 1
    DOCS.mkdir(parents=True, exist_ok=True)
    for name in IN_DOCS:
        shutil.copyfile(taken / f"{name}.png", DOCS / f"{name}.png")
    sys.stdout.write(f"{len(IN_DOCS)} screenshots copied to {DOCS}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
