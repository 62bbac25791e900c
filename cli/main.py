"""The `webhooks` command: endpoints, events and deliveries over the HTTP API, for operators.

    webhooks endpoints list|add|disable|enable|test     webhooks events emit TYPE
    webhooks endpoints recover|replay EP --since        webhooks recoveries list|show|cancel EP [REC]
    webhooks endpoints headers EP --set N:V --remove N
    webhooks deliveries list|show|retry                 add --json to any command for the API's own JSON
    webhooks events list --object-id inv_0042           webhooks deliveries list --customer-id 'cus_7*'
    webhooks listen --forward-to URL [--events a,b]      webhooks trigger TYPE [--endpoint EP] [--set k=v]

The API's URL and key come from `WEBHOOKS_API_URL` and `WEBHOOKS_API_KEY`, or `--api-url`/`--api-key`.
A refused request prints the API's reason and exits 1; a usage mistake exits 2; never a traceback. A
command whose outcome is a failure (a test event the endpoint did not acknowledge) prints it and exits 1.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.catalog import EVENT_TYPES_BY_NAME, SUBSCRIBABLE_BY_NAME


class CliSettings(BaseSettings):
    """Where the API is and the key to use. Separate from the service's `Settings`: the command runs on
    an operator's machine, where none of the server's settings apply."""

    model_config = SettingsConfigDict(env_prefix="WEBHOOKS_", extra="ignore")

    api_url: str = "http://127.0.0.1:8000"
    api_key: SecretStr | None = None


class CliError(Exception):
    """A failure to report in one line, with the exit code to leave with."""

    def __init__(self, message: str, code: int = 1, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status  # the API's HTTP status, when it answered with a refusal


@dataclass(frozen=True)
class Outcome:
    """What a command printed, when it can end in failure without the API refusing anything."""

    data: Any
    text: str
    code: int = 0


# A handler returns (the API's JSON, the text to print) or an `Outcome`.
Handler = Callable[[httpx.Client, argparse.Namespace], Any]
# `endpoints test` waits this long for the first attempt: more than an attempt's default timeout (15 s)
# plus a worker's pickup.
TEST_WAIT_SECONDS = 30.0
TEST_POLL_SECONDS = 0.5


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text.strip() or response.reason_phrase
    if isinstance(detail, list):  # FastAPI's 422: one entry per invalid field
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []) if p != 'body')}: {item.get('msg')}"
            for item in detail
        )
    return str(detail)


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TimeoutException:
        raise CliError(f"the API at {client.base_url} did not answer in time") from None
    except httpx.HTTPError as err:
        raise CliError(f"cannot reach the API at {client.base_url}: {err}") from None
    if response.status_code >= 400:
        raise CliError(
            f"{response.status_code} {response.reason_phrase}: {_detail(response)}",
            status=response.status_code,
        )
    return response.json() if response.content else None


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


# endpoints


def endpoints_list(client: httpx.Client, _args: argparse.Namespace) -> Any:
    found = call(client, "GET", "/v1/webhooks/endpoints")
    rows = [
        [
            e["id"],
            _health(e),
            e["signature_method"],
            f"ordered ({e['ordered_on_failure']})" if e.get("ordered") else "-",
            ",".join(e["event_types"]) if e["event_types"] else "all",
            e["url"],
        ]
        for e in found["items"]
    ]
    headings = ["ID", "HEALTH", "METHOD", "ORDER", "EVENT TYPES", "URL"]
    return found, _table(rows, headings) if rows else "no endpoints"


def _health(endpoint: dict[str, Any]) -> str:
    health = endpoint["health"]
    if health["state"] == "failing":
        return f"failing since {health['failing_since'][:16].replace('T', ' ')}"
    if health["state"] == "disabled" and endpoint.get("disabled"):
        return f"disabled ({endpoint['disabled']['by']})"
    return str(health["state"])


def endpoints_add(client: httpx.Client, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {
        "url": args.url,
        "signature_method": args.method,
        "event_types": args.event_types or None,
        "description": args.description,
        "enabled": not args.disabled,
        "headers": {
            **{n: v for n, v in map(_header, args.headers or [])},
            **{n: {"value": v, "secret": True} for n, v in map(_header, args.secret_headers or [])},
        }
        or None,
        "rate_limit_per_second": args.rate_limit,
        "retry_schedule": [float(s) for s in args.retry_schedule.split(",")] if args.retry_schedule else None,
        "ordered": args.ordered,
        "ordered_on_failure": args.on_failure,
        "alert_emails": args.alert_emails or [],
    }
    created = call(client, "POST", "/v1/webhooks/endpoints", json=body)
    text = f"created {created['id']} ({created['signature_method']}) for {created['url']}"
    if created.get("alert_emails"):
        text += f"\nits health changes are mailed to {', '.join(created['alert_emails'])}"
    if created.get("secret"):
        text += f"\nsigning secret (shown once here; `GET …/secret` reads it again): {created['secret']}"
    elif created["signature_method"] == "jwt":
        # A jwt receiver needs two things, and the second is the one easily forgotten.
        jwks_path = call(client, "GET", "/v1/me")["jwks_path"]
        text += (
            f"\nreceivers verify x-webhook-signature with the keys at {str(client.base_url).rstrip('/')}"
            f"{jwks_path}\nand refuse any token whose aud is not {created['id']}"
        )
    return created, text


def endpoints_update(client: httpx.Client, args: argparse.Namespace) -> Any:
    """Change how an endpoint orders its deliveries (PATCH): only what a flag names."""
    body: dict[str, Any] = {}
    if args.ordered is not None:
        body["ordered"] = args.ordered
    if args.on_failure is not None:
        body["ordered_on_failure"] = args.on_failure
    if not body:
        raise CliError("nothing to change: give --ordered, --unordered or --on-failure", code=2)
    path = f"/v1/webhooks/endpoints/{quote(args.endpoint_id, safe='')}"
    updated = call(client, "PATCH", path, json=body)
    order = f"ordered ({updated['ordered_on_failure']})" if updated["ordered"] else "unordered"
    return updated, f"{updated['id']} is {order}"


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep:
        raise CliError("a header is NAME:VALUE, e.g. --header 'Authorization: Bearer …'", code=2)
    return name.strip(), value.strip()


def endpoints_headers(client: httpx.Client, args: argparse.Namespace) -> Any:
    """Change an endpoint's custom headers one by one (PATCH merges them), or show them."""
    path = f"/v1/webhooks/endpoints/{quote(args.endpoint_id, safe='')}"
    changes: dict[str, Any] = {
        **{n: v for n, v in map(_header, args.set or [])},
        **{n: {"value": v, "secret": True} for n, v in map(_header, args.set_secret or [])},
        **{name: None for name in args.remove or []},
    }
    if args.remove_all:
        if changes:
            raise CliError("--remove-all removes every header: give it alone", code=2)
        endpoint = call(client, "PATCH", path, json={"headers": None})
    elif changes:
        endpoint = call(client, "PATCH", path, json={"headers": changes})
    else:
        endpoint = call(client, "GET", path)
    secret = set(endpoint.get("secret_headers", []))
    lines = [f"{n}: {v}" + ("  (secret)" if n in secret else "") for n, v in endpoint["headers"].items()]
    return endpoint, "\n".join(lines) if lines else "no custom headers"


def endpoints_rotate_secret(client: httpx.Client, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {"grace_seconds": int(args.grace)}
    if args.secret:
        body["secret"] = args.secret
    path = f"/v1/webhooks/endpoints/{quote(args.endpoint_id, safe='')}/secret/rotate"
    rotated = call(client, "POST", path, json=body)
    until = rotated["previous_secret_expires_at"]
    text = f"new signing secret: {rotated['secret']}\n" + (
        f"the previous one signs beside it until {until}" if until else "the previous one no longer signs"
    )
    return rotated, text


def _set_enabled(client: httpx.Client, endpoint_id: str, enabled: bool) -> Any:
    updated = call(
        client, "PATCH", f"/v1/webhooks/endpoints/{quote(endpoint_id, safe='')}", json={"enabled": enabled}
    )
    return updated, f"{updated['id']} is {'enabled' if enabled else 'disabled'}"


def endpoints_alert_emails(client: httpx.Client, args: argparse.Namespace) -> Any:
    """Show the addresses mailed when the endpoint's health changes, or set them (all at once)."""
    path = f"/v1/webhooks/endpoints/{quote(args.endpoint_id, safe='')}"
    if args.clear and args.addresses:
        raise CliError("give addresses to set, or --clear to have none, not both", code=2)
    if args.clear or args.addresses:
        endpoint = call(client, "PATCH", path, json={"alert_emails": args.addresses})
    else:
        endpoint = call(client, "GET", path)
    addresses = endpoint["alert_emails"]
    text = (
        f"{endpoint['id']}: failing, disabled and recovered are mailed to {', '.join(addresses)}"
        if addresses
        else f"{endpoint['id']} has no alert addresses of its own (the account's may still be mailed)"
    )
    return endpoint, text


def endpoints_disable(client: httpx.Client, args: argparse.Namespace) -> Any:
    return _set_enabled(client, args.endpoint_id, False)


def endpoints_enable(client: httpx.Client, args: argparse.Namespace) -> Any:
    return _set_enabled(client, args.endpoint_id, True)


def _settled(delivery: dict[str, Any]) -> bool:
    """Whether the first attempt's answer, or the schedule's end, is known."""
    return delivery["status"] in ("succeeded", "failed") or bool(delivery["attempts"])


def _wait_for_outcome(client: httpx.Client, delivery_id: str, timeout: float) -> dict[str, Any] | None:
    """The delivery once its first attempt is logged; the last one read if `timeout` passes first."""
    path = f"/v1/webhooks/deliveries/{quote(delivery_id, safe=':')}"
    deadline = time.monotonic() + timeout
    last: dict[str, Any] | None = None
    while True:
        try:
            last = call(client, "GET", path)
        except CliError as err:
            # Temporal briefly unavailable is worth waiting out; anything else is the answer.
            if err.status != 503:
                raise
        if (last is not None and _settled(last)) or time.monotonic() >= deadline:
            return last
        time.sleep(TEST_POLL_SECONDS)


def _attempt_text(attempt: dict[str, Any]) -> str:
    if attempt["status_code"] is not None:
        response = (attempt["response_body"] or "").replace("\n", " ")[:80]
        return f"HTTP {attempt['status_code']}" + (f" {response}" if response else "")
    return attempt["error"] or "no answer"


def endpoints_test(client: httpx.Client, args: argparse.Namespace) -> Outcome:
    if args.webhook_type is not None and args.webhook_type not in SUBSCRIBABLE_BY_NAME:
        raise CliError(
            f"unknown event type {args.webhook_type!r}; `GET /v1/webhooks/event-types` lists them", code=2
        )
    if args.timeout <= 0:
        raise CliError("--timeout must be more than 0 seconds", code=2)
    body = {"webhook_type": args.webhook_type} if args.webhook_type else {}
    sent = call(client, "POST", f"/v1/webhooks/endpoints/{quote(args.endpoint_id, safe='')}/test", json=body)
    delivery_id = sent["delivery_id"]
    if not getattr(args, "json", False):
        # Said at once: the delivery id is what to look up if the wait below is cut short.
        print(f"sent a test {sent['webhook_type']} event: delivery {delivery_id}", flush=True)  # noqa: T201
    delivery = _wait_for_outcome(client, delivery_id, args.timeout)
    data = {**sent, "delivery": delivery}
    follow = f"follow it with `webhooks deliveries show {delivery_id}`"
    if delivery is None or not _settled(delivery):
        return Outcome(data, f"no attempt within {args.timeout:g} s (is a worker running?); {follow}", 1)
    if not delivery["attempts"]:  # over without an attempt: the endpoint was deleted meanwhile, say
        return Outcome(data, f"{delivery['status']} without an attempt; {follow}", 1)
    attempt = delivery["attempts"][-1]
    if delivery["status"] == "succeeded":
        return Outcome(data, f"succeeded: HTTP {attempt['status_code']} in {attempt['duration_ms']} ms")
    if delivery["status"] == "failed":
        return Outcome(data, f"failed: {_attempt_text(attempt)}", 1)
    next_at = delivery["next_attempt_at"] or "soon"
    return Outcome(
        data,
        f"attempt {attempt['attempt']} failed: {_attempt_text(attempt)}\n"
        f"it is retried on the schedule (next attempt {next_at}); {follow}",
        1,
    )


def parse_when(value: str | None) -> str | None:
    """A moment for the API: ISO 8601 with its timezone, or a time ago (`90m`, `6h`, `7d`)."""
    if value is None:
        return None
    ago = re.fullmatch(r"(\d+)([smhd])", value.strip())
    if ago:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[ago.group(2)]
        return (datetime.now(UTC) - timedelta(**{unit: int(ago.group(1))})).isoformat()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise CliError(
            f"{value!r} is not a time: give ISO 8601 with a timezone (2026-11-26T10:00:00Z) or a time ago "
            "(90m, 6h, 7d)",
            code=2,
        )
    return moment.isoformat()


def _recovery_text(r: dict[str, Any]) -> str:
    tally = f"{r['done']} done, {r['failed']} failed, "
    tally += f"{r['skipped']} skipped, " if r["kind"] == "replay" else f"{r['expired']} expired, "
    status = r["status"] + (", cancel requested" if r["cancel_requested"] else "")
    lines = [
        f"recovery     {r['id']} ({r['kind']}, {status})",
        f"endpoint     {r['endpoint_id']}",
        f"window       {r['since']} to {r['until']}",
        f"progress     {tally}{r['left']} left of {r['total']}",
        f"started      {r['started_at']}",
        f"finished     {r['finished_at'] or '-'}",
    ]
    if r.get("event_types"):
        lines.insert(3, f"event types  {','.join(r['event_types'])}")
    if r.get("reason"):
        lines.append(f"reason       {r['reason']}")
    if r.get("workflow_url"):
        lines.append(f"temporal     {r['workflow_url']}")
    return "\n".join(lines)


def _recoveries_path(endpoint_id: str, recovery_id: str | None = None) -> str:
    path = f"/v1/webhooks/endpoints/{quote(endpoint_id, safe='')}"
    return f"{path}/recoveries/{quote(recovery_id, safe='')}" if recovery_id else f"{path}/recoveries"


def endpoints_recover(client: httpx.Client, args: argparse.Namespace) -> Any:
    body = {"since": parse_when(args.since), "until": parse_when(args.until)}
    started = call(
        client, "POST", f"/v1/webhooks/endpoints/{quote(args.endpoint_id, safe='')}/recover", json=body
    )
    return started, _recovery_text(started)


def endpoints_replay(client: httpx.Client, args: argparse.Namespace) -> Any:
    body = {
        "since": parse_when(args.since),
        "until": parse_when(args.until),
        "event_types": args.event_types or None,
    }
    started = call(
        client, "POST", f"/v1/webhooks/endpoints/{quote(args.endpoint_id, safe='')}/replay", json=body
    )
    return started, _recovery_text(started)


# recoveries


def recoveries_list(client: httpx.Client, args: argparse.Namespace) -> Any:
    found = call(client, "GET", _recoveries_path(args.endpoint_id))
    rows = [
        [r["id"], r["kind"], r["status"], str(r["done"]), str(r["left"]), r["started_at"]]
        for r in found["items"]
    ]
    text = _table(rows, ["ID", "KIND", "STATUS", "DONE", "LEFT", "STARTED"]) if rows else "no recoveries"
    return found, text


def recoveries_show(client: httpx.Client, args: argparse.Namespace) -> Any:
    found = call(client, "GET", _recoveries_path(args.endpoint_id, args.recovery_id))
    return found, _recovery_text(found)


def recoveries_cancel(client: httpx.Client, args: argparse.Namespace) -> Any:
    found = call(client, "DELETE", _recoveries_path(args.endpoint_id, args.recovery_id))
    return found, _recovery_text(found)


# events


def _event_data(args: argparse.Namespace) -> dict[str, Any]:
    if args.data is not None and args.data_file is not None:
        raise CliError("give --data or --data-file, not both", code=2)
    raw = args.data
    if args.data_file is not None:
        try:
            raw = Path(args.data_file).read_text() if args.data_file != "-" else sys.stdin.read()
        except OSError as err:
            raise CliError(f"cannot read {args.data_file}: {err.strerror}", code=2) from None
    if raw is None:
        return {"object": {}}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CliError(f"the event data is not valid JSON: {err}", code=2) from None
    if not isinstance(data, dict):
        raise CliError('the event data must be a JSON object, e.g. {"object": {"id": "inv_1"}}', code=2)
    # Accept the object alone as well as {"object": {...}}.
    return data if set(data) == {"object"} else {"object": data}


def business_arguments(parser: argparse.ArgumentParser) -> None:
    end = "; end it with * for a prefix"
    parser.add_argument("--object-id", help=f"only those of this object (data.object.id){end}")
    parser.add_argument("--customer-id", help=f"only those of this customer{end}")


def events_emit(client: httpx.Client, args: argparse.Namespace) -> Any:
    if args.webhook_type not in EVENT_TYPES_BY_NAME:
        raise CliError(
            f"unknown event type {args.webhook_type!r}; `GET /v1/webhooks/event-types` lists the 31 types",
            code=2,
        )
    body: dict[str, Any] = {"webhook_type": args.webhook_type, "data": _event_data(args)}
    if args.id:
        body["id"] = args.id
    if args.ordering_key is not None:
        body["ordering_key"] = args.ordering_key
    accepted = call(client, "POST", "/v1/events", json=body)
    return accepted, f"accepted {accepted['id']} ({accepted['webhook_type']})"


def _business(args: argparse.Namespace) -> dict[str, str]:
    """The business object a list is narrowed to: `inv_0042` exactly, or `inv_00*` for a prefix."""
    return {
        k: v
        for k, v in {"object_id": args.object_id, "customer_id": args.customer_id}.items()
        if v is not None
    }


def events_list(client: httpx.Client, args: argparse.Namespace) -> Any:
    params = {
        **_business(args),
        **{k: v for k, v in {"limit": args.limit, "cursor": args.cursor}.items() if v is not None},
    }
    found = call(client, "GET", "/v1/events", params=params)
    rows = [
        [e["id"], e["webhook_type"], e["object_id"] or "-", e["customer_id"] or "-", e["created_at"]]
        for e in found["items"]
    ]
    text = _table(rows, ["ID", "TYPE", "OBJECT", "CUSTOMER", "CREATED"]) if rows else "no events"
    if found.get("next_cursor"):
        text += f"\nmore: --cursor {found['next_cursor']}"
    return found, text


# deliveries


def deliveries_list(client: httpx.Client, args: argparse.Namespace) -> Any:
    params = {
        **_business(args),
        **{
            k: v
            for k, v in {
                "status": args.status,
                "event_type": args.event_type,
                "limit": args.limit,
                "cursor": args.cursor,
            }.items()
            if v is not None
        },
    }
    path = (
        f"/v1/webhooks/endpoints/{quote(args.endpoint, safe='')}/deliveries"
        if args.endpoint
        else "/v1/webhooks/deliveries"
    )
    found = call(client, "GET", path, params=params)
    rows = [
        [
            d["id"],
            d["status"],
            d["webhook_type"],
            str(d["attempt_count"]),
            str(d["last_status_code"] or "-"),
            d["updated_at"],
        ]
        for d in found["items"]
    ]
    text = _table(rows, ["ID", "STATUS", "TYPE", "ATTEMPTS", "LAST", "UPDATED"]) if rows else "no deliveries"
    if found.get("next_cursor"):
        text += f"\nmore: --cursor {found['next_cursor']}"
    return found, text


def deliveries_show(client: httpx.Client, args: argparse.Namespace) -> Any:
    d = call(client, "GET", f"/v1/webhooks/deliveries/{quote(args.delivery_id, safe=':')}")
    lines = [
        f"delivery     {d['id']}",
        f"status       {d['status']}",
        f"event        {d['event_id']} ({d['webhook_type']})",
        f"endpoint     {d['endpoint_id']}",
        f"next attempt {d['next_attempt_at'] or '-'}",
    ]
    if d.get("workflow_url"):
        lines.append(f"temporal     {d['workflow_url']}")
    rows = [
        [
            str(a["attempt"]),
            a["trigger"],
            a["started_at"],
            f"{a['duration_ms']} ms",
            str(a["status_code"] or "-"),
            (a["error"] or (a["response_body"] or "").replace("\n", " "))[:60],
        ]
        for a in d["attempts"]
    ]
    if rows:
        lines += ["", _table(rows, ["#", "TRIGGER", "STARTED", "TOOK", "STATUS", "ERROR OR RESPONSE"])]
    return d, "\n".join(lines)


def deliveries_retry(client: httpx.Client, args: argparse.Namespace) -> Any:
    accepted = call(client, "POST", f"/v1/webhooks/deliveries/{quote(args.delivery_id, safe=':')}/retry")
    return accepted, f"retrying {accepted['delivery_id']}: attempt {accepted['attempt']} is on its way"


def build_parser() -> argparse.ArgumentParser:
    # Options valid before or after the command; SUPPRESS keeps a sub-command from resetting them.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api-url", default=argparse.SUPPRESS, help="the API (env WEBHOOKS_API_URL)")
    common.add_argument("--api-key", default=argparse.SUPPRESS, help="your API key (env WEBHOOKS_API_KEY)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON")

    parser = argparse.ArgumentParser(
        prog="webhooks",
        description="Manage webhook endpoints, emit events, read and retry deliveries.",
        parents=[common],
    )
    groups = parser.add_subparsers(
        dest="group", required=True, metavar="{endpoints,events,deliveries,recoveries,listen,trigger}"
    )

    def command(sub: Any, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(handler=handler)
        return p

    endpoints = groups.add_parser("endpoints", help="webhook endpoints").add_subparsers(
        dest="command", required=True
    )
    command(endpoints, "list", endpoints_list, "list your endpoints")
    add = command(endpoints, "add", endpoints_add, "register an endpoint (prints its signing secret)")
    add.add_argument("url")
    add.add_argument("--method", choices=["hmac", "jwt"], default="hmac", help="signature method (hmac)")
    add.add_argument(
        "--event-type", dest="event_types", action="append", metavar="TYPE", help="repeat; default all"
    )
    add.add_argument("--description", default="")
    add.add_argument("--disabled", action="store_true", help="create it disabled")
    add.add_argument(
        "--header", dest="headers", action="append", metavar="NAME:VALUE", help="sent with every attempt"
    )
    add.add_argument(
        "--secret-header",
        dest="secret_headers",
        action="append",
        metavar="NAME:VALUE",
        help="the same, its value shown masked",
    )
    add.add_argument("--rate-limit", type=float, metavar="PER_SECOND", help="deliveries a second, at most")
    add.add_argument("--retry-schedule", metavar="SECONDS,...", help="this endpoint's own, e.g. 5,60,600")
    add.add_argument(
        "--ordered", action="store_true", help="deliver one at a time per ordering_key, in emission order"
    )
    add.add_argument(
        "--alert-email",
        dest="alert_emails",
        action="append",
        metavar="ADDRESS",
        help="mailed when it starts failing, is disabled or recovers; repeat",
    )
    add.add_argument(
        "--on-failure",
        choices=["block", "skip"],
        default="block",
        help="ordered_on_failure: when a lane's head fails every attempt, block its key until it is "
        "retried or skipped by hand, or skip it (block)",
    )
    update = command(endpoints, "update", endpoints_update, "change whether an endpoint is ordered")
    update.add_argument("endpoint_id")
    ordering = update.add_mutually_exclusive_group()
    ordering.add_argument(
        "--ordered",
        dest="ordered",
        action="store_const",
        const=True,
        help="deliver one at a time per ordering_key, in emission order",
    )
    ordering.add_argument(
        "--unordered",
        dest="ordered",
        action="store_const",
        const=False,
        help="deliver new events unordered (existing lanes finish what they hold)",
    )
    update.add_argument(
        "--on-failure", choices=["block", "skip"], help="ordered_on_failure: what a lane's failed head does"
    )
    rotate = command(
        endpoints,
        "rotate-secret",
        endpoints_rotate_secret,
        "a new signing secret; the old one signs too a while",
    )
    rotate.add_argument("endpoint_id")
    rotate.add_argument("--grace", type=float, default=86400, metavar="SECONDS", help="old one signs (86400)")
    rotate.add_argument("--secret", help="your own whsec_… secret (a migration); default a new one")
    alerts = command(
        endpoints,
        "alert-emails",
        endpoints_alert_emails,
        "show who is mailed when an endpoint's health changes, or set them",
    )
    alerts.add_argument("endpoint_id")
    alerts.add_argument("addresses", nargs="*", metavar="ADDRESS", help="the addresses to set (all of them)")
    alerts.add_argument("--clear", action="store_true", help="no addresses of its own")
    headers = command(
        endpoints, "headers", endpoints_headers, "show, set or remove an endpoint's custom headers"
    )
    headers.add_argument("endpoint_id")
    headers.add_argument("--set", action="append", metavar="NAME:VALUE", help="add or replace one")
    headers.add_argument("--set-secret", action="append", metavar="NAME:VALUE", help="the same, masked")
    headers.add_argument("--remove", action="append", metavar="NAME", help="remove one")
    headers.add_argument("--remove-all", action="store_true", help="remove them all")
    for name, handler, text in (
        ("disable", endpoints_disable, "stop delivering to an endpoint"),
        ("enable", endpoints_enable, "deliver to an endpoint again"),
    ):
        command(endpoints, name, handler, text).add_argument("endpoint_id")
    test = command(
        endpoints,
        "test",
        endpoints_test,
        "send an endpoint alone an example event and wait for its first attempt's answer",
    )
    test.add_argument("endpoint_id")
    test.add_argument(
        "--type",
        dest="webhook_type",
        metavar="TYPE",
        help="the event type (default: the first one the endpoint subscribes to, or invoice.created)",
    )
    test.add_argument(
        "--timeout", type=float, default=TEST_WAIT_SECONDS, help=f"seconds to wait ({TEST_WAIT_SECONDS:g})"
    )
    when = "ISO 8601 with a timezone (2026-11-26T10:00:00Z) or a time ago (90m, 6h, 7d)"
    recover = command(
        endpoints, "recover", endpoints_recover, "re-attempt, once each, the endpoint's failed deliveries"
    )
    replay = command(endpoints, "replay", endpoints_replay, "deliver the events the endpoint never received")
    for p in (recover, replay):
        p.add_argument("endpoint_id")
        p.add_argument("--since", required=True, help=f"from then: {when}")
        p.add_argument("--until", help="up to then (default now)")
    replay.add_argument(
        "--event-type",
        dest="event_types",
        action="append",
        metavar="TYPE",
        help="repeat; default the types it subscribes to",
    )

    events = groups.add_parser("events", help="emit and find events").add_subparsers(
        dest="command", required=True
    )
    emit = command(events, "emit", events_emit, "emit an event to every subscribed endpoint")
    emit.add_argument("webhook_type", help="e.g. invoice.created")
    emit.add_argument("--data", help='the object as JSON, e.g. \'{"id": "inv_1"}\'')
    emit.add_argument("--data-file", help="read the JSON from a file ('-' for stdin)")
    emit.add_argument("--id", help="your event id: the same id twice is one event")
    emit.add_argument(
        "--ordering-key",
        metavar="KEY",
        help="1-128 printable ASCII characters (a customer's id, say): on ordered endpoints, the events "
        "of one key are delivered one at a time, in emission order",
    )
    events_listing = command(events, "list", events_list, "events, newest first; by business object")
    business_arguments(events_listing)
    events_listing.add_argument("--limit", type=int)
    events_listing.add_argument("--cursor")

    deliveries = groups.add_parser("deliveries", help="the webhook log").add_subparsers(
        dest="command", required=True
    )
    listing = command(
        deliveries, "list", deliveries_list, "deliveries, newest first by when their event was accepted"
    )
    listing.add_argument("--endpoint", help="only this endpoint's")
    listing.add_argument("--status", choices=["pending", "succeeded", "failed"])
    listing.add_argument("--event-type")
    business_arguments(listing)
    listing.add_argument("--limit", type=int)
    listing.add_argument("--cursor")
    command(deliveries, "show", deliveries_show, "one delivery and every attempt").add_argument("delivery_id")
    command(deliveries, "retry", deliveries_retry, "one attempt now, marked manual").add_argument(
        "delivery_id"
    )

    recoveries = groups.add_parser("recoveries", help="recoveries and replays").add_subparsers(
        dest="command", required=True
    )
    command(recoveries, "list", recoveries_list, "an endpoint's recoveries, newest first").add_argument(
        "endpoint_id"
    )
    for name, handler, text in (
        ("show", recoveries_show, "one recovery's progress"),
        ("cancel", recoveries_cancel, "stop a running recovery (what is in flight finishes)"),
    ):
        p = command(recoveries, name, handler, text)
        p.add_argument("endpoint_id")
        p.add_argument("recovery_id")

    from cli import listen  # it uses this module's `call`: imported once this one is

    listen.add_commands(groups, command)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = CliSettings()
    api_url = getattr(args, "api_url", None) or settings.api_url
    api_key = getattr(args, "api_key", None) or (
        settings.api_key.get_secret_value() if settings.api_key else ""
    )
    try:
        if not api_key:
            raise CliError("no API key: set WEBHOOKS_API_KEY or pass --api-key", code=2)
        if not api_url.startswith(("http://", "https://")):
            raise CliError(f"--api-url must start with http:// or https://, got {api_url!r}", code=2)
        with httpx.Client(base_url=api_url, headers={"x-api-key": api_key}, timeout=30) as client:
            result = args.handler(client, args)
    except CliError as err:
        print(f"webhooks: error: {err}", file=sys.stderr)  # noqa: T201
        return err.code
    outcome = result if isinstance(result, Outcome) else Outcome(*result)
    print(json.dumps(outcome.data, indent=2) if getattr(args, "json", False) else outcome.text)  # noqa: T201
    return outcome.code


def main() -> None:
    try:
        sys.exit(run())
    except KeyboardInterrupt:
        sys.exit(130)
