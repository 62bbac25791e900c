"""Settings given tenant by tenant: `acme:5,*:1` (WEBHOOKS_TENANT_WEIGHTS), `acme:strict,*:off`
(WEBHOOKS_VALIDATE_EVENTS). One form and one parser, so that every such setting is written, and refused
when it is wrong, the same way."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_TENANT = re.compile(r"[A-Za-z0-9_-]{1,64}|\*")


def parse_tenant_pairs(
    value: str, *, setting: str, what: str, example: str, values: str, parse_value: Callable[[str], T]
) -> tuple[dict[str, T], T | None]:
    """`tenant:value` pairs, comma-separated: each named tenant's value, and the value of `*` (every
    other tenant) if given. `parse_value` raises `ValueError` for a value it does not take; the message
    then says how to write the setting (`what` names the value, `values` says which ones are taken)."""
    named: dict[str, T] = {}
    default: T | None = None
    seen: set[str] = set()
    for entry in filter(None, (e.strip() for e in value.split(","))):
        tenant, sep, raw = (part.strip() for part in entry.rpartition(":"))
        parsed: T | None = None
        if sep and _TENANT.fullmatch(tenant):
            try:
                parsed = parse_value(raw)
            except ValueError:
                parsed = None
        if parsed is None:
            raise ValueError(
                f"{setting}: {entry!r} is not tenant:{what}; write it like {example} "
                f"(a tenant id or * for every other tenant, and {values})"
            )
        if tenant in seen:
            raise ValueError(f"{setting} names {tenant} twice; give each tenant one {what}")
        seen.add(tenant)
        if tenant == "*":
            default = parsed
        else:
            named[tenant] = parsed
    return named, default
