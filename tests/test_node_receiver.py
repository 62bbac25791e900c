"""examples/node-receiver: the Node.js standardwebhooks library verifies our hmac deliveries.

`npm ci` (the npm registry, from the committed lock file) installs it into a temp copy of the example.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from core.signing import generate_secret, sign_hmac
from launcher import Stack, free_port
from tests.conftest import create_endpoint, emit, needed, settled, wait_delivery, wait_for

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "node-receiver"


def _tools() -> tuple[str, str]:
    node = needed(shutil.which("node"), "node", "apt-get install nodejs npm")
    npm = needed(shutil.which("npm"), "npm", "apt-get install npm")
    return str(node), str(npm)


def test_node_receiver_verifies_deliveries(stack: Stack, api: httpx.Client, tmp_path: Path) -> None:
    node, npm = _tools()
    app = tmp_path / "node-receiver"
    shutil.copytree(EXAMPLE, app, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=app, check=True, capture_output=True, timeout=300
    )

    endpoint = create_endpoint(api, "http://127.0.0.1:9/placeholder")
    port = free_port()
    log = tmp_path / "node.log"
    env = {**os.environ, "WEBHOOK_SECRET": endpoint["secret"], "PORT": str(port), "HOST": "127.0.0.1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [node, "receiver.mjs"], cwd=app, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: "listening on" in log.read_text(), what="the node receiver")
        base = f"http://127.0.0.1:{port}"
        api.patch(f"/v1/webhooks/endpoints/{endpoint['id']}", json={"url": f"{base}/webhooks"})
        event_id = emit(
            api, "subscription.started", data={"object": {"id": "sub_node", "note": "caf\u00e9"}}
        )["id"]
        final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled)
        assert final["status"] == "succeeded", final["attempts"]
        wait_for(
            lambda: f"subscription.started id={event_id}:{endpoint['id']} (hmac verified)" in log.read_text(),
            what="the node receiver's line",
        )

        body = '{"webhook_type":"invoice.voided","object_type":"invoice","data":{"object":{}}}'

        def post(sign_body: str, at: float, secret: str) -> int:
            headers = {
                "webhook-id": "evt_forged:ep_x",
                "webhook-timestamp": str(int(at)),
                "webhook-signature": sign_hmac(secret, "evt_forged:ep_x", int(at), sign_body),
                "content-type": "application/json",
            }
            return httpx.post(f"{base}/webhooks", content=body.encode(), headers=headers).status_code

        now = time.time()
        assert post(body, now, endpoint["secret"]) == 200
        assert post(body.replace("voided", "created"), now, endpoint["secret"]) == 401  # tampered body
        assert post(body, now - 600, endpoint["secret"]) == 401  # stale timestamp
        assert post(body, now, generate_secret()) == 401  # wrong secret
    finally:
        proc.terminate()
        proc.wait(timeout=15)
