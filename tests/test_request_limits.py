"""Input is bounded before it costs anything: key, size and time checks of a real API process.

A raw socket plays the client, so that a test controls what is sent and when: a body announced and never
sent, a chunked body streamed until the API answers, a body trickled a byte at a time. The API runs under
both of uvicorn's HTTP implementations: h11 in the image (requirements.lock has no httptools), httptools
under `make run`. Temporal is not running: none of this needs it.
"""

from __future__ import annotations

import json
import re
import select
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.routing import APIRoute

from api.deps import declared_scopes, needs_key
from api.main import ROUTERS, create_app
from core.settings import Settings
from launcher import API_KEEP_ALIVE_SECONDS, Stack
from tests.conftest import standalone_api_process

KEY = "key_limits_" + "z" * 20
BODY_TIMEOUT = 2  # seconds; the default is 30
MAX_REQUEST_BYTES = Settings().max_request_bytes  # 4 × 256 KiB + 64 KiB
HUNDRED_MB = 100_000_000
CHUNK = b"x" * 65536


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client managed to send before the API answered or closed


@pytest.fixture(scope="module", params=["h11", "httptools"])
def api_process(request: pytest.FixtureRequest) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    env = {"WEBHOOKS_API_KEYS": f"t:{KEY}", "WEBHOOKS_REQUEST_BODY_TIMEOUT": str(BODY_TIMEOUT)}
    with standalone_api_process(env, uvicorn_args=("--http", request.param)) as started:
        yield started


@pytest.fixture
def api_url(api_process: tuple[str, subprocess.Popen[bytes]]) -> str:
    return api_process[0]


def send_raw(
    base_url: str,
    head: str,
    chunks: Iterable[bytes] = (),
    *,
    pause: float = 0.0,
    chunked: bool = False,
    blind: bool = False,
) -> Answer:
    """Send `head`, then each chunk (after `pause` seconds) until the API answers; read its answer.

    A `blind` client does not look for an answer while it sends: it stops only when the API closes.
    """
    parts = urlsplit(base_url)
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                if not blind and select.select([sock], [], [], pause)[0]:
                    break  # the API has answered (or closed): stop sending
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
                sent += len(chunk)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the API closed the connection without reading the rest: what we want
        return _read_answer(sock, sent)


def _read_answer(sock: socket.socket, sent: int) -> Answer:
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data) < _length(data):
            more = sock.recv(65536)
            if not more:
                break
            data += more
    except ConnectionResetError:
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), data[:200]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, body, sent)


def _length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(data) + 1


def post_head(path: str, *, key: str | None, length: int | None) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if key is not None:
        lines.append(f"x-api-key: {key}")
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return "\r\n".join(lines) + "\r\n\r\n"


def hundred_mb() -> Iterator[bytes]:
    whole, rest = divmod(HUNDRED_MB, len(CHUNK))
    for _ in range(whole):
        yield CHUNK
    yield CHUNK[:rest]


@pytest.mark.parametrize("key", [None, "wrong"])
def test_no_key_is_401_before_the_body_is_read(api_url: str, key: str | None) -> None:
    # Announce 100 MB and send none of it: the answer must come from the headers alone.
    answer = send_raw(api_url, post_head("/v1/events", key=key, length=HUNDRED_MB))
    assert answer.status == 401
    assert json.loads(answer.body) == {"detail": "missing or invalid x-api-key header"}
    assert answer.headers["www-authenticate"] == "ApiKey"
    assert answer.headers["connection"] == "close"


def test_an_announced_oversized_body_is_413_before_it_is_read(api_url: str) -> None:
    answer = send_raw(api_url, post_head("/v1/events", key=KEY, length=HUNDRED_MB))
    assert answer.status == 413
    detail = json.loads(answer.body)["detail"]
    assert f"larger than {MAX_REQUEST_BYTES} bytes" in detail
    assert "262144" in detail  # the payload limit it derives from


def test_a_chunked_body_is_cut_off_at_the_limit(api_url: str) -> None:
    answer = send_raw(api_url, post_head("/v1/events", key=KEY, length=None), hundred_mb(), chunked=True)
    assert answer.status == 413
    assert "larger than" in json.loads(answer.body)["detail"]
    # The API stopped reading at the limit; what the client got out beyond it sat in socket buffers.
    assert answer.sent < HUNDRED_MB // 4


def test_a_body_just_under_the_limit_is_read_and_parsed(api_url: str) -> None:
    padding = MAX_REQUEST_BYTES - 200
    body = b'{"webhook_type": "invoice.created", "data": {"object": {"pad": "' + b"x" * padding + b'"}}}'
    assert len(body) <= MAX_REQUEST_BYTES
    response = httpx.post(
        f"{api_url}/v1/events", content=body, headers={"x-api-key": KEY, "content-type": "application/json"}
    )
    # Past the guard: the route refuses the payload itself (the guard's limit is the larger one).
    assert response.status_code == 413
    assert "the payload is larger than 262144 bytes" in response.json()["detail"]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_sent_too_slowly_is_408(api_url: str, chunked: bool) -> None:
    # One byte every 0.2 s: the whole body would take over three minutes.
    trickle = (b"x" for _ in range(1000))
    head = post_head("/v1/events", key=KEY, length=None if chunked else 1000)
    answer = send_raw(api_url, head, trickle, pause=0.2, chunked=chunked)
    assert answer.status == 408
    assert f"within {BODY_TIMEOUT} s" in json.loads(answer.body)["detail"]
    assert answer.sent < 1000  # the API answered long before the client was done


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize(
    ("key", "chunked"),
    [(None, False), (None, True), (KEY, False), (KEY, True)],
    ids=["no-key", "no-key-chunked", "key", "key-chunked"],
)
def test_a_100_mb_body_does_not_grow_the_api(
    api_process: tuple[str, subprocess.Popen[bytes]], key: str | None, chunked: bool
) -> None:
    base_url, process = api_process
    # Warm up the same path first, so that what is measured is the body, not first-use imports.
    send_raw(base_url, post_head("/v1/events", key=key, length=None), [CHUNK] * 20, chunked=True)
    before = _rss_bytes(process.pid)
    head = post_head("/v1/events", key=key, length=None if chunked else HUNDRED_MB)
    answer = send_raw(base_url, head, hundred_mb(), chunked=chunked, blind=True)
    assert answer.status == (413 if key else 401)
    time.sleep(0.2)  # let the API finish closing the connection
    grown = _rss_bytes(process.pid) - before
    # A bound, not a speed: before the guard, the same request grew the API by hundreds of MB.
    assert grown < 8 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB"


def test_a_connection_idle_longer_than_a_client_keeps_one_is_still_answered(api_url: str) -> None:
    # httpx drops a connection idle for 5 s, uvicorn by default closed one idle for 5 s: a request sent
    # as both ran out got no answer (a bench run's POST failed so). The API now keeps it open for longer
    # than clients and load balancers do, so that the client is the one that drops it.
    parts = urlsplit(api_url)
    ask = f"GET /v1/webhooks/endpoints HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY}\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(ask.encode())
        first = _read_answer(sock, 0)
        assert first.status == 200 and first.headers.get("connection") != "close", first
        time.sleep(6)  # longer than httpx's keep-alive and uvicorn's default: no load makes it shorter
        closed = bool(select.select([sock], [], [], 0)[0]) and sock.recv(1, socket.MSG_PEEK) == b""
        assert not closed, "the API closed a connection idle for 6 s"
        sock.sendall(ask.encode())
        assert _read_answer(sock, 0).status == 200


def test_make_run_and_the_image_keep_connections_longer_than_clients_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert int(API_KEEP_ALIVE_SECONDS) > 60  # AWS's load balancer keeps idle connections 60 s
    monkeypatch.delenv("UVICORN_TIMEOUT_KEEP_ALIVE", raising=False)
    assert Stack({}).env["UVICORN_TIMEOUT_KEEP_ALIVE"] == API_KEEP_ALIVE_SECONDS
    assert Stack({"UVICORN_TIMEOUT_KEEP_ALIVE": "120"}).env["UVICORN_TIMEOUT_KEEP_ALIVE"] == "120"
    root = Path(__file__).parent.parent
    image = (root / "Dockerfile").read_text()
    assert re.search(rf"^\s+UVICORN_TIMEOUT_KEEP_ALIVE={API_KEEP_ALIVE_SECONDS}$", image, re.MULTILINE)
    # Compose runs the image's API as it is: nothing sets another value there.
    assert "UVICORN_" not in (root / "docker-compose.yml").read_text()


def test_the_guard_asks_a_key_of_exactly_the_routes_that_take_one() -> None:
    # The guard decides from the path, before routing; the routes decide by declaring a scope (api/deps.py).
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    documented = create_app(Settings()).openapi()["paths"]
    # Every router the app includes is here (the codec's routes and the old JWKS are not in the schema).
    assert {r.path for r in routes if r.include_in_schema} == set(documented)
    for route in routes:
        assert needs_key(route.path) == bool(declared_scopes(route.dependant)), route.path
    assert not needs_key("/v1/webhooks/jwks.json")
    assert not needs_key("/v1/webhooks/jwks/acme.json")
