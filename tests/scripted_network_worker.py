"""`python -m tests.scripted_network_worker`: the real worker, on tests/fake_network.py's DNS and internet.

For end-to-end tests of the destination guard (DNS rebinding). The script comes in `SCRIPTED_NETWORK`, a
JSON object: `answers` ({name: [[address, ...], ...]}), `routes` ([[public address, port, local port],
...]) and `lookups_log` (a file that gets one line per lookup). Only this module reads it: the worker
itself has no way to change how it resolves names, and tests/ is not in the image.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import worker
from core.egress import GuardedNetworkBackend
from tests.fake_network import LocalInternet, ScriptedResolver


def main() -> None:
    script = json.loads(os.environ["SCRIPTED_NETWORK"])
    resolver = ScriptedResolver(script["answers"], log=Path(script["lookups_log"]))
    internet = LocalInternet({(address, port): local for address, port, local in script["routes"]})
    worker.main(network_backend=GuardedNetworkBackend(resolver=resolver, dialer=internet))


if __name__ == "__main__":
    main()
