"""The destination guard inside the delivery client (core/egress.py): one lookup per connection, every
address checked, the connection made to a checked address; DNS rebinding never reaches loopback.

Names resolve through tests/fake_network.py: nothing here looks a name up in real DNS or dials anything
but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from core.egress import DestinationRefused, GuardedNetworkBackend, guarded_transport
from core.settings import Settings
from core.signing import JwtSigner, load_or_create_rsa_key
from domain.models import AttemptOutcome, AttemptRecord, AttemptTrigger, DeliverRequest
from launcher import Stack
from store.database import EndpointStore
from tests.conftest import add_endpoint, api_client, create_endpoint, emit, settled, stack_env, wait_delivery
from tests.fake_network import PUBLIC_V4, PUBLIC_V6, LocalInternet, ScriptedResolver
from tests.local_http import RECEIVER_KEEP_ALIVE, QuietHandler, idle_closing_receiver
from tests.receiver import Answer, Receiver
from worker import http_client

REBIND = "rebind.example.test"
# What an internal service would hand the tenant: more than the log's 4 KB.
INTERNAL_SECRET = b"internal-only " * 400
LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)


def _port(receiver: Receiver) -> int:
    return int(receiver.base_url.rsplit(":", 1)[1])


def guarded_client(resolver: ScriptedResolver, internet: LocalInternet) -> httpx.AsyncClient:
    backend = GuardedNetworkBackend(resolver=resolver, dialer=internet)
    return http_client(allow_private_urls=False, network_backend=backend)


def _endpoint(store: EndpointStore, url: str) -> str:
    return add_endpoint(store, "t", url=url).id


async def _attempt(activities: DeliveryActivities, endpoint_id: str, n: int) -> AttemptRecord:
    request = DeliverRequest(
        tenant="t",
        endpoint_id=endpoint_id,
        delivery_id=f"evt_{n}:{endpoint_id}",
        body="{}",
        attempt=n,
        trigger=AttemptTrigger.SCHEDULED,
        timeout=5,
    )
    return await ActivityEnvironment().run(activities.deliver_once, request)


@pytest.fixture
def signer(tmp_path: Path) -> JwtSigner:
    return JwtSigner.from_pem(load_or_create_rsa_key(tmp_path / "k.pem"), issuer="t")


async def test_dns_rebinding_is_refused_and_the_checked_address_is_the_one_dialled(
    store: EndpointStore, signer: JwtSigner
) -> None:
    # The reported attack: the name answers a public address, then 127.0.0.1, where an internal service
    # listens on the URL's port. Before the fix the check took the first answer and httpx the second.
    with Receiver() as internal, Receiver() as public:
        internal.script("/admin", [Answer(200, body=INTERNAL_SECRET)])
        public.script("/admin", [Answer(500, headers={"connection": "close"})])
        port = _port(internal)
        resolver = ScriptedResolver({REBIND: [[PUBLIC_V4], ["127.0.0.1"]]})
        internet = LocalInternet({(PUBLIC_V4, port): _port(public)})
        endpoint_id = _endpoint(store, f"http://{REBIND}:{port}/admin")
        async with guarded_client(resolver, internet) as http:
            activities = DeliveryActivities(http, store, signer)

            first = await _attempt(activities, endpoint_id, 1)
            assert first.status_code == 500  # the public address that was checked is the one dialled
            assert internet.dials == [(PUBLIC_V4, port)]
            assert public.requests("/admin")[0].headers["host"] == f"{REBIND}:{port}"  # Host stays the name

            second = await _attempt(activities, endpoint_id, 2)  # a new connection: the name answers anew
        assert second.outcome is AttemptOutcome.RETRYABLE
        assert second.error == f"{REBIND} resolves to 127.0.0.1, a loopback address: refused"
        assert second.status_code is None and second.response_body is None
        assert internal.requests("/admin") == []
        assert internet.dials == [(PUBLIC_V4, port)]  # nothing dialled for the refused connection
        assert resolver.lookups == [REBIND, REBIND]  # one lookup per connection, never a second one


async def test_addresses_of_both_families_are_checked_and_tried_in_order() -> None:
    with Receiver() as stand_in, Receiver() as internal:
        port = _port(internal)
        resolver = ScriptedResolver(
            {
                "dual.example.test": [[PUBLIC_V6, PUBLIC_V4]],
                "mixed.example.test": [[PUBLIC_V4, "::1"]],
                "mapped.example.test": [["::ffff:127.0.0.1"]],
                "v6-inward.example.test": [["fd00::1", PUBLIC_V4]],
            }
        )
        internet = LocalInternet({(PUBLIC_V4, port): _port(stand_in)})  # the IPv6 address does not answer
        async with guarded_client(resolver, internet) as http:
            response = await http.post(f"http://dual.example.test:{port}/hook", content=b"{}")
            assert response.status_code == 200
            assert internet.dials == [(PUBLIC_V6, port), (PUBLIC_V4, port)]

            refused = {
                "mixed.example.test": "resolves to ::1, a loopback address",
                "mapped.example.test": "resolves to ::ffff:127.0.0.1, an IPv4-mapped form of 127.0.0.1",
                "v6-inward.example.test": "resolves to fd00::1, a unique local (private) address",
            }
            for name, reason in refused.items():
                with pytest.raises(DestinationRefused, match=re.escape(reason)):
                    await http.post(f"http://{name}:{port}/hook", content=b"{}")
        assert len(internet.dials) == 2  # one refused address refuses the name: nothing else dialled
        assert internal.requests("/hook") == []


async def test_an_address_that_never_answers_does_not_hold_up_the_next_one() -> None:
    # Happy eyeballs (RFC 8305), as httpx does for a name: the IPv6 address is a black hole, the IPv4 one
    # is dialled a moment later and wins, and the IPv6 attempt is abandoned rather than waited out.
    with Receiver() as stand_in:
        resolver = ScriptedResolver({"v6-broken.example.test": [[PUBLIC_V6, PUBLIC_V4]]})
        internet = LocalInternet({(PUBLIC_V4, 80): _port(stand_in)}, black_holes={PUBLIC_V6})
        async with guarded_client(resolver, internet) as http:
            response = await http.post(
                "http://v6-broken.example.test/hook", content=b"{}", timeout=httpx.Timeout(30, connect=5)
            )
        assert response.status_code == 200
        assert internet.dials == [(PUBLIC_V6, 80), (PUBLIC_V4, 80)]
        assert internet.abandoned == [(PUBLIC_V6, 80)]

    # When no address answers, the attempt fails as a connect failure, not as a refusal.
    resolver = ScriptedResolver({"dark.example.test": [[PUBLIC_V6, PUBLIC_V4]]})
    internet = LocalInternet(black_holes={PUBLIC_V6, PUBLIC_V4})
    async with guarded_client(resolver, internet) as http:
        with pytest.raises(httpx.ConnectTimeout):
            await http.post(
                "http://dark.example.test/hook", content=b"{}", timeout=httpx.Timeout(30, connect=1)
            )
    assert internet.dials == [(PUBLIC_V6, 80), (PUBLIC_V4, 80)] and internet.abandoned == []


async def test_pooled_connections_are_reused_without_a_new_lookup() -> None:
    with Receiver() as stand_in:
        resolver = ScriptedResolver({"pool.example.test": [[PUBLIC_V4]]})
        internet = LocalInternet({(PUBLIC_V4, 80): _port(stand_in)})
        async with guarded_client(resolver, internet) as http:
            for _ in range(3):
                assert (await http.post("http://pool.example.test/hook", content=b"{}")).status_code == 200
        assert resolver.lookups == ["pool.example.test"]
        assert internet.dials == [(PUBLIC_V4, 80)]
        assert len(stand_in.requests("/hook")) == 3


@pytest.mark.parametrize(
    ("host", "error"),
    [
        ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("0x7f.1", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
        ("127.1", "127.1 resolves to 127.0.0.1, a loopback address"),
        ("0", "0 resolves to 0.0.0.0, a 'this network' address, which reaches this machine"),
        ("127。0。0。1", "127.0.0.1 is a loopback address"),  # httpx reads the ideographic dots itself
        ("localhost.", "localhost. resolves to 127.0.0.1, a loopback address"),
        ("[::a9fe:a9fe]", "::a9fe:a9fe is an IPv4-compatible address carrying 169.254.169.254"),
        ("[::127.0.0.1]", "::127.0.0.1 is an IPv4-compatible address carrying 127.0.0.1"),
        ("[2002:a9fe:a9fe::]", "2002:a9fe:a9fe:: is a 6to4 address carrying 169.254.169.254"),
        ("[64:ff9b:1::a00:1]", "64:ff9b:1::a00:1 is a local-use NAT64 address"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        (
            "[::ffff:169.254.169.254]",
            "::ffff:169.254.169.254 is an IPv4-mapped form of 169.254.169.254, "
            "a link-local address (cloud metadata services live there)",
        ),
        ("[64:ff9b::7f00:1]", "64:ff9b::7f00:1 is a NAT64 form of 127.0.0.1, a loopback address"),
    ],
)
async def test_every_refused_form_is_refused_at_delivery(
    host: str, error: str, store: EndpointStore, signer: JwtSigner
) -> None:
    with Receiver() as internal:
        port = _port(internal)
        # Address literals are parsed as getaddrinfo parses them; "localhost." answers as /etc/hosts does.
        resolver = ScriptedResolver({"localhost.": [["127.0.0.1", "::1"]]})
        internet = LocalInternet()
        endpoint_id = _endpoint(store, f"http://{host}:{port}/hook")
        async with guarded_client(resolver, internet) as http:
            record = await _attempt(DeliveryActivities(http, store, signer), endpoint_id, 1)
        assert record.outcome is AttemptOutcome.RETRYABLE
        assert record.error == f"{error}: refused"
        assert internet.dials == []
        assert internal.requests("/hook") == []


@pytest.mark.parametrize("host", ["0177.0.0.1", "１２７．０．０．１"])
async def test_forms_the_client_cannot_parse_never_reach_the_network(host: str) -> None:
    # validate_url refuses them when saved (tests/test_core_destinations.py); an endpoint saved before then
    # fails in httpx's URL parser, before any lookup.
    resolver = ScriptedResolver({})
    internet = LocalInternet()
    async with guarded_client(resolver, internet) as http:
        with pytest.raises(httpx.InvalidURL):
            await http.post(f"http://{host}:9/hook", content=b"{}")
    assert resolver.lookups == [] and internet.dials == []


async def test_the_worker_client_guards_without_injection() -> None:
    # The client the worker builds, untouched: if an httpx upgrade stopped using our pool, this fails.
    with Receiver() as internal:
        async with http_client(allow_private_urls=False) as http:
            with pytest.raises(DestinationRefused, match="127.0.0.1 is a loopback address: refused"):
                await http.post(internal.url("/hook"), content=b"{}")
        assert internal.requests("/hook") == []
        async with http_client(allow_private_urls=True) as http:  # make run and the test stack
            assert (await http.post(internal.url("/hook"), content=b"{}")).status_code == 200


async def test_an_attempt_never_goes_out_on_a_connection_the_receiver_is_closing(
    store: EndpointStore, signer: JwtSigner
) -> None:
    with idle_closing_receiver() as receiver:
        endpoint_id = _endpoint(store, receiver.url("/hook"))
        async with http_client(allow_private_urls=True) as http:  # the worker's client
            activities = DeliveryActivities(http, store, signer)
            first = await _attempt(activities, endpoint_id, 1)
            # Idle as long as the receiver's timeout, less the network's time for its FIN: a load on
            # this machine only makes it longer, which changes nothing below.
            await asyncio.sleep(RECEIVER_KEEP_ALIVE - 0.05)
            second = await _attempt(activities, endpoint_id, 2)
    assert first.status_code == 200
    assert second.status_code == 200, second.error  # before: "Server disconnected without sending …"
    assert receiver.dropped == [] and len(receiver.answered) == 2


# -- TLS: SNI and certificate verification stay on the name ------------------------------------------


def _certificate(name: str, tmp: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `name` signed by it: (ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.UTC)

    def build(
        subject: str,
        issuer: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        *,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca = build("test CA", "test CA", ca_key, ca_key, ca=True)
    server = build(name, "test CA", server_key, ca_key, ca=False)
    paths = (tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@contextmanager
def tls_server(cert: Path, key: Path, server_names: list[str | None]) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 answering 200; each handshake's SNI goes to `server_names`."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.answer(200)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_tls_verifies_the_name_not_the_address(tmp_path: Path) -> None:
    ca, cert, key = _certificate("hooks.example.test", tmp_path)
    server_names: list[str | None] = []
    with tls_server(cert, key, server_names) as tls_port:
        resolver = ScriptedResolver(
            {"hooks.example.test": [[PUBLIC_V4]], "other.example.test": [[PUBLIC_V4]]}
        )
        internet = LocalInternet({(PUBLIC_V4, 443): tls_port})
        backend = GuardedNetworkBackend(resolver=resolver, dialer=internet)
        verify = ssl.create_default_context(cafile=str(ca))
        async with httpx.AsyncClient(
            transport=guarded_transport(limits=LIMITS, network_backend=backend, verify=verify)
        ) as http:
            response = await http.post("https://hooks.example.test/hook", content=b"{}")
            assert response.status_code == 200
            assert server_names == ["hooks.example.test"]  # SNI is the name, though we dialled an address
            # The same address under another name: the certificate does not match, and the guard does
            # not make it match.
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                await http.post("https://other.example.test/hook", content=b"{}")
        assert internet.dials == [(PUBLIC_V4, 443), (PUBLIC_V4, 443)]


# -- egress proxy --------------------------------------------------------------------------------------


async def test_an_egress_proxy_carries_deliveries_and_resolves_for_us() -> None:
    # A forward proxy gets the absolute URL; this one answers itself. We never resolve the name (.test
    # names do not resolve): the proxy does, and its own rules guard the destinations.
    with Receiver() as proxy:
        proxy.script("http://hooks.example.test/hook", [Answer(202)])
        async with http_client(allow_private_urls=False, egress_proxy=proxy.base_url) as http:
            response = await http.post("http://hooks.example.test/hook", content=b"{}")
        assert response.status_code == 202
        assert len(proxy.requests("http://hooks.example.test/hook")) == 1


def test_the_egress_proxy_must_be_an_http_url() -> None:
    assert Settings.model_validate({"egress_proxy": ""}).egress_proxy is None  # set but empty: unset
    assert Settings.model_validate({"egress_proxy": "http://proxy:4750"}).egress_proxy is not None
    with pytest.raises(ValidationError, match="http:// or https://"):
        Settings.model_validate({"egress_proxy": "socks5://proxy:1080"})


# -- end to end ----------------------------------------------------------------------------------------


class ScriptedNetworkStack(Stack):
    """The stack with tests/scripted_network_worker.py as its worker (the API and Temporal unchanged)."""

    def start_worker(self) -> None:
        self.worker = self._spawn([sys.executable, "-m", "tests.scripted_network_worker"])


def test_dns_rebinding_end_to_end(stack: Stack, tmp_path: Path) -> None:
    lookups_log = tmp_path / "lookups.log"
    log_file = tmp_path / "stack.log"
    with Receiver() as internal, Receiver() as public:
        internal.script("/admin", [Answer(200, body=INTERNAL_SECRET)])
        public.script("/admin", [Answer(500, headers={"connection": "close"})])
        port = _port(internal)
        script = {
            "answers": {REBIND: [[PUBLIC_V4], ["127.0.0.1"]]},
            "routes": [[PUBLIC_V4, port, _port(public)]],
            "lookups_log": str(lookups_log),
        }
        env = stack_env(
            tmp_path,
            WEBHOOKS_TEMPORAL_ADDRESS=stack.settings.temporal_target,
            WEBHOOKS_TASK_QUEUE="dns-rebinding-test",
            WEBHOOKS_ALLOW_PRIVATE_URLS="false",
            SCRIPTED_NETWORK=json.dumps(script),
        )
        guarded = ScriptedNetworkStack(env, log_file=log_file)
        try:
            guarded.start()
            with api_client(guarded) as api:
                endpoint = create_endpoint(api, f"http://{REBIND}:{port}/admin")
                event_id = emit(api)["id"]
                final = wait_delivery(api, f"{event_id}:{endpoint['id']}", settled, timeout=60)
        finally:
            guarded.stop()
        assert final["status"] == "failed"
        attempts = final["attempts"]
        assert attempts[0]["status_code"] == 500  # the first answer, public, was checked and dialled
        refusal = f"{REBIND} resolves to 127.0.0.1, a loopback address: refused"
        assert len(attempts) == 4
        assert [a["error"] for a in attempts[1:]] == [refusal] * 3
        assert all(a["response_body"] is None for a in attempts[1:])
        assert internal.requests("/admin") == []
        assert len(public.requests("/admin")) == 1
        assert lookups_log.read_text().splitlines() == [REBIND] * 4  # one lookup per attempt
        # The worker's attempt lines say why, too (text format: key=value, a value with spaces quoted).
        assert log_file.read_text().count(f"error={json.dumps(refusal)}") == 3
