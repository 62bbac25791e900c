"""`python -m cli.crypto new-key [KEY_ID]`: a new entry for WEBHOOKS_ENCRYPTION_KEYS (core/crypto.py
says how the keyring is used)."""

from __future__ import annotations

import os
import sys

from core.crypto import KEY_ID_PATTERN, new_key_entry


def main() -> None:
    """Print a new WEBHOOKS_ENCRYPTION_KEYS entry."""
    args = sys.argv[1:]
    if not args or args[0] != "new-key" or len(args) > 2:
        raise SystemExit("usage: python -m cli.crypto new-key [KEY_ID]")
    kid = args[1] if len(args) == 2 else f"k{int.from_bytes(os.urandom(3), 'big'):06x}"
    if not KEY_ID_PATTERN.match(kid):
        raise SystemExit("a key id uses letters, digits, '_', '-' and '.', up to 32")
    print(new_key_entry(kid))  # noqa: T201


if __name__ == "__main__":
    main()
