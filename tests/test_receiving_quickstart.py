"""docs/receiving.md's first block, run as written against the session's stack: `webhooks listen`, the
example receiver verifying with the secret `listen` printed, `webhooks trigger`, and a verified delivery.

The commands are read from the doc and run by bash in a folder laid out as the repository is after
`make run` (`.venv` and `.data/dev-api-key`). Three things differ, as they must: the secret, which the
reader copies from `listen`'s output; the receiver's port, a free one instead of 9000; and
`WEBHOOKS_API_URL`, which points at the test stack (the doc says to set it when the API is elsewhere).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from launcher import Stack, free_port
from tests.conftest import KEYS, wait_delivery, wait_for
from tests.test_listen import Listener

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "receiving.md").read_text()
SECRET_PLACEHOLDER = "whsec_…"


def documented_commands() -> list[str]:
    section = DOC[DOC.index("## On your laptop first") :].split("\n## ")[0]
    block = section[section.index("```sh\n") + len("```sh\n") :].split("```")[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_doc_opens_with_three_commands_after_a_setup_line() -> None:
    setup, *commands = documented_commands()
    assert setup.startswith("export ")
    assert [c.split()[0] for c in commands] == [
        "webhooks",
        f"WEBHOOK_SECRET={SECRET_PLACEHOLDER}",
        "webhooks",
    ]
    assert commands[0].startswith("webhooks listen --forward-to ")
    assert commands[2] == "webhooks trigger invoice.created"
    # The guide starts with them, then production; the README's quick start links to them.
    assert DOC.index("## On your laptop first") < DOC.index("## In production")
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start") :].split("\n## ")[0]
    assert "docs/receiving.md#on-your-laptop-first-webhooks-listen" in quick_start


@contextmanager
def shell(
    folder: Path, env: dict[str, str], setup: str, command: str, *, log: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`command` run by bash after `setup`, in `folder`; its output piped, or written to `log`."""
    with open(log or os.devnull, "w") as out:
        process = subprocess.Popen(
            ["bash", "-c", f"{setup}\n{command}"],
            cwd=folder,
            env=env,
            stdout=out if log else subprocess.PIPE,
            stderr=subprocess.STDOUT if log else subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: bash and the command it runs, signalled as one
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_the_documented_commands_make_a_verified_delivery(
    stack: Stack, api: httpx.Client, tmp_path: Path
) -> None:
    setup, listen, receive, trigger = documented_commands()
    # The repository after `make run`: its virtualenv (this one) and the dev key file.
    folder = tmp_path / "checkout"
    (folder / ".data").mkdir(parents=True)
    (folder / ".data" / "dev-api-key").write_text(f"tenant_a:{KEYS['tenant_a']}\n")
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    ours = {"WEBHOOK_SECRET", "PWD", "OLDPWD"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_") and k not in ours}
    env.update(WEBHOOKS_API_URL=stack.api_url, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    port = str(free_port())
    listen, receive = (re.sub(r"\b9000\b", port, c) for c in (listen, receive))

    with shell(folder, env, setup, listen) as listening:
        cli = Listener(listening)
        assert cli.secret.startswith("whsec_")
        receiver_log = tmp_path / "receiver.log"
        with shell(folder, env, setup, receive.replace(SECRET_PLACEHOLDER, cli.secret), log=receiver_log):
            wait_for(lambda: _answers(f"http://127.0.0.1:{port}"), what="the example receiver")
            triggered = subprocess.run(
                ["bash", "-c", f"{setup}\n{trigger}"],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert triggered.returncode == 0, triggered.stderr
            event_id = re.fullmatch(r"triggered invoice\.created: event (\S+)\n", triggered.stdout)
            assert event_id, triggered.stdout
            delivery_id = f"{event_id.group(1)}:{cli.endpoint_id}"

            assert "→ 200" in cli.expect(delivery_id)
            verified = f"id={delivery_id} (hmac verified)"
            wait_for(lambda: verified in receiver_log.read_text(), what="the receiver's verified line")
            done = wait_delivery(api, delivery_id, lambda d: d["status"] == "succeeded")
            assert done["webhook_type"] == "invoice.created" and done["attempts"][0]["status_code"] == 200
        os.killpg(listening.pid, signal.SIGINT)  # Ctrl-C
        assert listening.wait(timeout=30) == 0
    assert "NOT verified" not in receiver_log.read_text()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
