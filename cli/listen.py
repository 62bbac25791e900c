"""`webhooks listen` and `webhooks trigger`: a receiver's developer loop on a laptop.

`listen --forward-to URL` opens a session on the API (service/listen.py) and long-polls it: nothing on the
laptop listens for the internet. Each delivery that comes back is POSTed to the local URL with the headers
a production endpoint gets (signed with the session's secret, printed at start), and what the local
server answered is reported, so the webhook log shows it (sent again for a few seconds if no API replica
took it). Forwarding runs in a few threads beside the poll, so a slow local handler never delays the
next poll (which also keeps the session alive). Polls and reports may reach any API replica: the session
and its hand-offs live in the store.

Ctrl-C or SIGTERM ends it: the deliveries being forwarded finish and are reported, the session is ended
(its endpoint disabled), and the command exits 0. A session that the API ended because it did not hear
the CLI for too long (the laptop asleep, no API reachable) is opened again as soon as an API answers;
one replaced by a newer `listen`, or ended by hand, ends the command (exit 1).

`trigger TYPE` emits the catalog's example of a type (changed with `--set data.object.x=1`), to every
subscribed endpoint, or as a test event to one (`--endpoint`).
"""

from __future__ import annotations

import argparse
import copy
import json
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import FrameType
from typing import Any
from urllib.parse import quote

import httpx

from cli.main import CliError, Outcome, call
from domain.catalog import EVENT_TYPES_BY_NAME, SUBSCRIBABLE_BY_NAME
from domain.listen import SILENT_CLI

LISTEN_WAIT = 20.0  # seconds a poll waits on the API for a delivery: under the API's longest (30 s)
FORWARDERS = 4  # deliveries forwarded at once; each has its attempt's timeout
RECONNECT_SECONDS = 1.0  # the wait before polling again after the API could not be reached
# How long a report that reached no API is sent again: inside the heartbeat timeout (10 s) of the attempt
# waiting for it, which no poll heartbeats while no API answers, and after which it is made again.
REPORT_RETRY_SECONDS = 8.0
ANSWER_BODY_LIMIT = 65536  # of the local server's answer, sent back for the log (which keeps 4 KB)
ANSWER_HEADERS_LIMIT = 50


def _terminated(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the session as Ctrl-C does


class _Forwarder:
    """POSTs deliveries to the local URL and reports each answer, one line printed per delivery."""

    def __init__(self, api: httpx.Client, forward_to: str) -> None:
        self._api_url = api.base_url
        self._api_headers = dict(api.headers)
        self._forward_to = forward_to
        self._local = threading.local()
        self._print = threading.Lock()

    def _clients(self) -> tuple[httpx.Client, httpx.Client]:
        """This thread's clients of the local server and of the API (httpx clients are not shared)."""
        if not hasattr(self._local, "clients"):
            self._local.clients = (
                httpx.Client(follow_redirects=False, trust_env=False),
                httpx.Client(base_url=self._api_url, headers=self._api_headers, timeout=30),
            )
        clients: tuple[httpx.Client, httpx.Client] = self._local.clients
        return clients

    def forward(self, delivery: dict[str, Any], session_id: str) -> None:
        local, api = self._clients()
        timeout = float(delivery["timeout"])
        started = time.perf_counter()
        answer: dict[str, Any]
        try:
            response = local.post(
                self._forward_to,
                content=delivery["body"].encode(),
                headers=delivery["headers"],
                timeout=timeout,
            )
            answer = {
                "status_code": response.status_code,
                "headers": response.headers.multi_items()[:ANSWER_HEADERS_LIMIT],
                "body": response.text[:ANSWER_BODY_LIMIT],
                "status_line": f"{response.http_version} {response.status_code} {response.reason_phrase}",
            }
            shown = str(response.status_code)
        except httpx.TimeoutException:
            answer = {"status_code": None, "error": f"timed out after {timeout:g} s"}
            shown = "timed out"
        except httpx.HTTPError as err:
            answer = {"status_code": None, "error": f"{type(err).__name__}: {err}".rstrip(": ")[:1000]}
            shown = "no answer"
        answer["duration_ms"] = round((time.perf_counter() - started) * 1000)
        path = f"/v1/webhooks/listen/{quote(session_id, safe='')}/answers/{quote(delivery['id'], safe='')}"
        note = self._report(api, path, answer)
        self.say(
            f"{datetime.now():%Y-%m-%d %H:%M:%S}  {delivery['webhook_type']}  {delivery['delivery_id']}  "
            f"attempt {delivery['attempt']}  → {shown}  {answer['duration_ms']} ms{note}"
        )

    def _report(self, api: httpx.Client, path: str, answer: dict[str, Any]) -> str:
        """Report one answer; what to add to its line. A report that reached no API (a replica gone, a
        balancer between two) or met a 5xx is sent again for a few seconds: lost, its attempt would be
        made again (and forwarded twice) only once its try timed out."""
        deadline = time.monotonic() + REPORT_RETRY_SECONDS
        failed: CliError | None = None
        while True:
            try:
                call(api, "POST", path, json=answer)
                return ""
            except CliError as err:
                if failed is not None and err.status == 404:
                    # An earlier try may have landed before its answer was lost: the attempt is logged.
                    return "  (logged already: an earlier try of this report reached the API)"
                if (err.status is not None and err.status < 500) or time.monotonic() >= deadline:
                    return f"  (not logged: {err})"
                failed = err
            time.sleep(RECONNECT_SECONDS)

    def say(self, line: str) -> None:
        with self._print:
            print(line, flush=True)  # noqa: T201

    def close(self) -> None:
        # Only the threads' own clients remain: they close with the process.
        pass


def _open(client: httpx.Client, event_types: list[str] | None, forward_to: str) -> dict[str, Any]:
    body = {"event_types": event_types, "forward_to": forward_to}
    opened: dict[str, Any] = call(client, "POST", "/v1/webhooks/listen", json=body)
    return opened


def _now() -> str:
    return f"{datetime.now():%Y-%m-%d %H:%M:%S}"


def listen(client: httpx.Client, args: argparse.Namespace) -> Outcome:
    forward_to: str = args.forward_to
    if not forward_to.startswith(("http://", "https://")):
        raise CliError(f"--forward-to must be an http:// or https:// URL, got {forward_to!r}", code=2)
    event_types = [t.strip() for t in args.events.split(",") if t.strip()] if args.events else None
    for name in event_types or []:
        if name not in SUBSCRIBABLE_BY_NAME:
            raise CliError(f"unknown event type {name!r}; `GET /v1/webhooks/event-types` lists them", code=2)
    opened = _open(client, event_types, forward_to)
    forwarder = _Forwarder(client, forward_to)
    # SIGINT too: a shell that starts `webhooks listen &` hands it SIGINT ignored, which Python keeps, and
    # its Ctrl-C or `kill -INT` would then leave the session open and the process running. Both are set
    # before "Ready" is printed: a signal sent as soon as it is read ends the session too.
    previous = signal.signal(signal.SIGTERM, _terminated)
    previous_int = signal.signal(signal.SIGINT, _terminated)
    pool = ThreadPoolExecutor(FORWARDERS, thread_name_prefix="forward")
    ended: str | None = None
    unreachable: CliError | None = None  # the API's silence, told once until it answers again
    try:
        forwarder.say(
            f"Ready: forwarding {', '.join(event_types) if event_types else 'every event type'} to "
            f"{forward_to}\n"
            f"session {opened['session_id']}, listening endpoint {opened['endpoint_id']}\n"
            f"webhook signing secret: {opened['secret']}\n"
            "(Ctrl-C to stop)"
        )
        while True:
            path = f"/v1/webhooks/listen/{quote(opened['session_id'], safe='')}"
            try:
                polled = call(
                    client, "POST", f"{path}/poll", params={"wait": LISTEN_WAIT}, timeout=LISTEN_WAIT + 15
                )
            except CliError as err:
                if err.status == 409 and SILENT_CLI in str(err):
                    # No API heard this CLI for longer than a session lives (a laptop asleep, the API
                    # away): what the session held failed as "listener gone", to be retried. Go on with a
                    # new session of the same endpoint and secret, as the CLI was never stopped.
                    try:
                        reopened = _open(client, event_types, forward_to)
                    except CliError as failed:
                        forwarder.say(f"{_now()}  the session ended and could not be opened again ({failed})")
                        time.sleep(RECONNECT_SECONDS)
                        continue
                    forwarder.say(
                        f"{_now()}  session {opened['session_id']} ended while the API did not hear this "
                        f"listen ({err}); opened session {reopened['session_id']}, listening endpoint "
                        f'{reopened["endpoint_id"]}: what failed meanwhile as "listener gone" comes again '
                        "on its schedule, or retry it"
                    )
                    if reopened["secret"] != opened["secret"]:
                        forwarder.say(f"webhook signing secret: {reopened['secret']}")
                    opened = reopened
                    unreachable = None
                    continue
                if err.status in (404, 409):  # the session ended: replaced, or ended by hand
                    ended = str(err)
                    break
                if unreachable is None:
                    forwarder.say(f"{_now()}  the API did not answer ({err}); polling again until it does")
                unreachable = err
                time.sleep(RECONNECT_SECONDS)
                continue
            if unreachable is not None:
                forwarder.say(f"{_now()}  the API answers again")
                unreachable = None
            for delivery in polled["deliveries"]:
                pool.submit(forwarder.forward, delivery, opened["session_id"])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        pool.shutdown(wait=True)  # what is being forwarded is answered first: its attempt is not lost
        if ended is None:
            try:
                call(client, "DELETE", f"/v1/webhooks/listen/{quote(opened['session_id'], safe='')}")
            except CliError as err:
                forwarder.say(f"the session was not ended ({err}); it ends by itself when not polled")
        forwarder.close()
    if ended is not None:
        return Outcome(opened, f"the listen session ended: {ended}", 1)
    return Outcome(
        opened, f"stopped: session {opened['session_id']} ended, endpoint {opened['endpoint_id']} disabled"
    )


def set_field(data: dict[str, Any], assignment: str) -> None:
    """Apply one `--set data.object.a.b=VALUE` to `{"object": {...}}`: VALUE as JSON if it parses, else
    as a string."""
    path, sep, raw = assignment.partition("=")
    parts = path.strip().split(".")
    if not sep or len(parts) < 3 or parts[:2] != ["data", "object"] or not all(parts):
        raise CliError(
            f"--set takes data.object.FIELD=VALUE (e.g. data.object.amount_due=100), got {assignment!r}",
            code=2,
        )
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    target = data["object"]
    for name in parts[2:-1]:
        child = target.get(name)
        if not isinstance(child, dict):
            child = target[name] = {}
        target = child
    target[parts[-1]] = value


def trigger(client: httpx.Client, args: argparse.Namespace) -> Any:
    known = SUBSCRIBABLE_BY_NAME if args.endpoint else EVENT_TYPES_BY_NAME
    if args.webhook_type not in known:
        raise CliError(
            f"unknown event type {args.webhook_type!r}; `GET /v1/webhooks/event-types` lists them", code=2
        )
    data = {"object": copy.deepcopy(known[args.webhook_type].example)}
    for assignment in args.set or []:
        set_field(data, assignment)
    if args.endpoint:
        body: dict[str, Any] = {"webhook_type": args.webhook_type}
        if args.set:
            body["object"] = data["object"]
        sent = call(client, "POST", f"/v1/webhooks/endpoints/{quote(args.endpoint, safe='')}/test", json=body)
        return (
            sent,
            f"sent a test {sent['webhook_type']} event to {sent['endpoint_id']}: "
            f"delivery {sent['delivery_id']}",
        )
    accepted = call(client, "POST", "/v1/events", json={"webhook_type": args.webhook_type, "data": data})
    return accepted, f"triggered {accepted['webhook_type']}: event {accepted['id']}"


def add_commands(groups: Any, command: Any) -> None:
    """`listen` and `trigger`, commands of their own (no group), as `stripe listen` and `stripe trigger`."""
    p = command(groups, "listen", listen, "forward your deliveries to a local URL, signed as in production")
    p.add_argument("--forward-to", required=True, metavar="URL", help="e.g. http://127.0.0.1:3000/hooks")
    p.add_argument("--events", metavar="TYPE,TYPE", help="only these event types (default every type)")
    t = command(groups, "trigger", trigger, "emit the catalog's example of an event type")
    t.add_argument("webhook_type", help="e.g. invoice.created")
    t.add_argument("--endpoint", metavar="EP", help="send it to this endpoint alone, as a test event")
    t.add_argument(
        "--set", action="append", metavar="data.object.FIELD=VALUE", help="repeat; VALUE as JSON or text"
    )
