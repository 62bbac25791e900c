"""Alert mails: a person told by e-mail that an endpoint started failing, was disabled or recovered.

- **Who.** The addresses set on the endpoint (`alert_emails`, by its tenant) and on its tenant
  (`WEBHOOKS_TENANT_ALERT_EMAILS=acme:ops@acme.com|cfo@acme.com,globex:noc@globex.io`, by the operator),
  in one mail. Addresses are checked here, the same way for both: plain `local@domain.tld`, ASCII, no
  display name, so that none can smuggle a header or a second recipient into the mail.
- **What.** Which endpoint (id, description, the URL's scheme, host and port only: its path or query may
  hold a token), what changed and when (UTC, said so), the last status and error, and the dashboard's endpoint
  page when the API's public address is known. Never a secret, a header's value or a payload.
- **Once.** One mail per state change: the mail's workflow id and its `Message-ID` are derived from the
  operational event's id (store/health.py owes one per transition), so a retry of the send, a second sweep
  or a second process makes the same mail, and a receiving server that got it twice can tell.

`compose` builds the message; `activities/alerts.py` sends it (smtplib), `service/alerts.py` decides
whether there is anyone to send it to.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

MAX_ALERT_EMAILS = 10  # on one endpoint; a team's list is one address, not ten people
MAX_ADDRESS = 254  # RFC 5321's longest path, less its angle brackets
# The transitions that are mailed: a lane that blocks is told as a webhook only (its endpoint is healthy).
MAILED = ("failing", "recovered", "disabled")

# Dot-atoms of RFC 5322 without `|` (which separates a tenant's addresses in its setting) and without
# quoted strings, comments or IP literals: what a team's alert address is, and nothing a header could
# be bent with.
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TENANT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LIKE = "write it like ops@acme.com (the address alone: no name, no <>, no spaces)"


def check_address(address: str, *, where: str = "alert_emails") -> str:
    """`address` if it is one we send to; `ValueError` saying what to fix (`where` names the field)."""
    shown = address if len(address) <= 80 else address[:77] + "..."
    if not address.isascii():
        raise ValueError(f"{where}: {shown!r} has characters beyond ASCII; {_LIKE}")
    local, at, domain = address.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or len(address) > MAX_ADDRESS
        or len(local) > 64
        or not _LOCAL.fullmatch(local)
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(f"{where}: {shown!r} is not an e-mail address; {_LIKE}")
    return address


def check_alert_emails(addresses: list[str]) -> list[str]:
    """An endpoint's alert addresses, each checked, repeats (in any case) left out; `ValueError` saying
    what to fix."""
    if len(addresses) > MAX_ALERT_EMAILS:
        raise ValueError(
            f"alert_emails has {len(addresses)} addresses; at most {MAX_ALERT_EMAILS} (a team's list "
            "address reaches more people)"
        )
    return unique([check_address(a.strip(), where=f"alert_emails[{i}]") for i, a in enumerate(addresses)])


def unique(addresses: list[str]) -> list[str]:
    """`addresses` in order, each once whatever its case (as mail servers treat a domain, and most a
    local part)."""
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.lower(), address)
    return list(seen.values())


def parse_tenant_alert_emails(value: str) -> dict[str, list[str]]:
    """`"acme:ops@acme.com|cfo@acme.com,globex:noc@globex.io"` → each tenant's addresses; `ValueError`
    saying what to fix."""
    found: dict[str, list[str]] = {}
    for entry in filter(None, (e.strip() for e in value.split(","))):
        tenant, sep, addresses = (part.strip() for part in entry.partition(":"))
        if not sep or not _TENANT.fullmatch(tenant) or not addresses:
            raise ValueError(
                f"WEBHOOKS_TENANT_ALERT_EMAILS: {entry!r} is not tenant:address; write it like "
                "acme:ops@acme.com|cfo@acme.com,globex:noc@globex.io (a tenant id, then its addresses "
                "separated by |; no * : each tenant's alerts go to its own people)"
            )
        if tenant in found:
            raise ValueError(f"WEBHOOKS_TENANT_ALERT_EMAILS names {tenant} twice; list its addresses once")
        listed = [a.strip() for a in addresses.split("|") if a.strip()]
        found[tenant] = unique(
            [check_address(a, where=f"WEBHOOKS_TENANT_ALERT_EMAILS ({tenant})") for a in listed]
        )
    return found


def shown_url(url: str) -> str:
    """An endpoint's URL as a mail may show it: its scheme, host and port only. A hook URL often carries
    its token in the query string, and as often in the path (Slack's `/services/T…/B…/<secret>`): the
    path is elided (`/…`), and credentials (which the store refuses anyway) are never shown."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    path = "/…" if parts.path.strip("/") else "/"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


class AlertMailInput(BaseModel):
    """One alert mail: what `AlertMailWorkflow` sends, decided when the operational event was sent."""

    tenant: str
    endpoint_id: str
    notice_id: str  # the operational event's id: the mail's workflow id and Message-ID are made of it
    transition: str  # failing, recovered or disabled
    at: datetime  # when the transition began
    recipients: list[str]
    description: str = ""
    url: str | None = None  # its scheme, host and port (`shown_url`); None for an endpoint deleted since
    about: dict[str, Any] = Field(default_factory=dict)  # the operational event's object
    dashboard_url: str | None = None  # the endpoint's page, if the API's public address is set


class AlertMailResult(BaseModel):
    sent: bool
    recipients: list[str] = Field(default_factory=list)  # those the server accepted
    refused: dict[str, str] = Field(default_factory=dict)  # address → the server's answer
    reason: str | None = None  # why nothing was sent


def _utc(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _what_changed(mail: AlertMailInput) -> str:
    about = mail.about
    when = _utc(mail.at)
    since = _utc(about.get("failing_since"))
    if mail.transition == "failing":
        return (
            f"started failing: {about.get('consecutive_failures') or 'several'} attempts in a row have "
            f"failed, since {since or when}. Its deliveries are retried on their schedule meanwhile."
        )
    if mail.transition == "recovered":
        return f"recovered: an attempt succeeded at {when}" + (
            f", after failing since {since}." if since else "."
        )
    disabled = about.get("disabled") or {}
    by = {"rule": "by the service", "api": "by hand", "listen": "as its listen session ended"}.get(
        str(disabled.get("by")), "by hand"
    )
    reason = disabled.get("reason")
    return (
        f"was disabled {by} at {when}"
        + (f" ({_one_line(str(reason), 300)})" if reason and reason != "disabled by hand" else "")
        + ". Nothing is sent to it until it is enabled again; what it missed can be replayed then."
    )


def compose(mail: AlertMailInput, *, sender: str, now: datetime) -> EmailMessage:
    """The alert as a plain-text message from `sender` to every recipient."""
    about = mail.about
    name = _one_line(mail.description, 80) or mail.endpoint_id
    subject = {
        "failing": f"Webhook endpoint failing: {name}",
        "recovered": f"Webhook endpoint recovered: {name}",
        "disabled": f"Webhook endpoint disabled: {name}",
    }.get(mail.transition, f"Webhook endpoint {mail.transition}: {name}")
    status = about.get("last_status_code")
    error = about.get("last_error")
    rows = [
        ("Endpoint", mail.endpoint_id),
        ("Description", _one_line(mail.description, 300) or "(none)"),
        ("URL", mail.url or "(the endpoint was deleted since)"),
        ("Account", mail.tenant),
        ("When", _utc(mail.at) or ""),
        ("Last status", f"HTTP {status}" if status is not None else "no HTTP answer"),
    ]
    if error:
        rows.append(("Last error", _one_line(str(error), 500)))
    if mail.transition != "recovered" and about.get("consecutive_failures"):
        rows.append(("Failed in a row", str(about["consecutive_failures"])))
    width = max(len(label) for label, _ in rows)
    lines = [
        f"Your webhook endpoint {name} {_what_changed(mail)}",
        "",
        *(f"{label.ljust(width)}  {value}" for label, value in rows),
        "",
    ]
    if mail.dashboard_url:
        lines += [f"Open it in the dashboard: {mail.dashboard_url}", ""]
    lines += [
        "-- ",
        "Sent once for this change by Flexprice webhooks, to the alert addresses of this endpoint and of",
        "your account. Only the URL's host is shown; no secret or payload is ever mailed.",
    ]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(mail.recipients)
    message["Subject"] = subject
    message["Date"] = format_datetime(now.astimezone(UTC))
    # The same for every send of this change: a server or a reader that got it twice can tell.
    message["Message-ID"] = f"<{mail.notice_id}.{mail.tenant}@flexprice-webhooks.invalid>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    message["X-Webhooks-Endpoint"] = mail.endpoint_id
    message["X-Webhooks-Transition"] = mail.transition
    message.set_content("\n".join(lines))
    return message
