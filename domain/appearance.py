"""How a portal session's dashboard looks inside the product that embeds it: its title, accent colour and
logo (issue 23, white-label embedding).

The host's backend asks for them when it opens the session (`POST /v1/portal/sessions`, `appearance`);
they are signed into the session's token (core/sessions.py), so the page reads them from the API, and
what the session sets wins over the URL parameters a host may use instead (api/dashboard/js/embed.js,
which checks those as here). Each is checked here, once, for the API and the token alike: the page
puts the title in as text, the colour in a CSS custom property and the logo in an <img>'s `src`, and
nothing accepted here can be markup, CSS beyond a colour, or a script URL. The logo's origin must also
be one the page's Content-Security-Policy allows images from (the framing origins): checked by the
service, which knows them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_TITLE = 80
MAX_LOGO_URL = 2048
ACCENT = re.compile(r"#[0-9a-fA-F]{6}")
# Hosts where plain http is a developer's own machine, not a network an image could be changed on.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
# Characters a URL in an attribute or a CSP never needs, and that could end one early.
_UNSAFE_IN_URL = re.compile(r"[\s\"'<>\\`]|[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Appearance:
    """What the host asked for; None where it asked nothing (the dashboard's own look)."""

    title: str | None = None
    accent_color: str | None = None
    logo_url: str | None = None

    @property
    def empty(self) -> bool:
        return self.title is None and self.accent_color is None and self.logo_url is None


def check_title(value: str) -> str:
    """The title as shown (trimmed); ValueError saying what to fix."""
    title = value.strip()
    if not title:
        raise ValueError("title must have at least one character that is not a space")
    if len(title) > MAX_TITLE:
        raise ValueError(f"title must be at most {MAX_TITLE} characters (it is {len(title)})")
    if any(c in title for c in "\r\n\t") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in title):
        raise ValueError("title must be one line of plain text: no line breaks or control characters")
    if "<" in title or ">" in title:
        raise ValueError("title must be plain text, no markup: leave out < and >")
    return title


def check_accent_color(value: str) -> str:
    """The colour in lower case; ValueError saying what to fix."""
    if not ACCENT.fullmatch(value):
        raise ValueError(f"accent_color must be a colour written #rrggbb, like #0f9d58 (not {value[:40]!r})")
    return value.lower()


def check_logo_url(value: str) -> str:
    """The logo's URL as given; ValueError saying what to fix."""
    if len(value) > MAX_LOGO_URL:
        raise ValueError(f"logo_url must be at most {MAX_LOGO_URL} characters (it is {len(value)})")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    host = parts.hostname if parts else None
    shown_host = f"[{host}]" if host and ":" in host else host
    local = parts is not None and parts.scheme == "http" and shown_host in LOCAL_HOSTS
    if (
        parts is None
        or _UNSAFE_IN_URL.search(value)
        or not host
        or not (parts.scheme == "https" or local)
        or (port is not None and not 1 <= port <= 65535)
    ):
        raise ValueError(
            "logo_url must be an https URL of an image, like https://app.example.com/logo.svg (http only "
            "on 127.0.0.1 or localhost, for development), with no spaces or quotes"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("logo_url must have no user name or password in it")
    return value


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL `check_logo_url` accepted, as browsers spell an origin."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    port = f":{parts.port}" if parts.port is not None and parts.port != default else ""
    return f"{parts.scheme}://{host}{port}"
