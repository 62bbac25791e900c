"""A JSON Schema (2020-12) for every event type, made from the catalog's examples, and a checker for it.

One source: each type's `data.object` schema is read off its example (domain/catalog.py), so the schema,
the example a test event carries and the documentation cannot drift apart. The whole envelope is
described (`webhook_type` and `object_type` as constants, `data.object`), for receivers to generate types
with standard tools. A field whose example is null may be absent or null; every other field of the
example is required with the example's type. Objects allow more properties: a receiver must accept
fields added later, and so does `WEBHOOKS_VALIDATE_EVENTS=strict`, which holds for every tenant or for
the tenants it names (`EventValidation`).

`violations` checks a value against the small part of JSON Schema these schemas use (`type`, `const`,
`required`, `properties`, `items`); no dependency is needed for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from domain.catalog import SUBSCRIBABLE_BY_NAME, EventType
from domain.tenant_pairs import parse_tenant_pairs

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def value_schema(example: Any) -> dict[str, Any]:
    """The schema of a value like `example`."""
    if example is None:
        return {}  # null in the example: its type is not known, and absent or null are fine
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int):
        return {"type": "integer"}
    if isinstance(example, float):
        return {"type": "number"}
    if isinstance(example, str):
        return {"type": "string", "format": "date-time"} if _TIMESTAMP.match(example) else {"type": "string"}
    if isinstance(example, list):
        return {"type": "array", "items": value_schema(example[0])} if example else {"type": "array"}
    if isinstance(example, dict):
        return {
            "type": "object",
            "properties": {name: value_schema(value) for name, value in example.items()},
            "required": [name for name, value in example.items() if value is not None],
        }
    raise TypeError(f"an example holds a {type(example).__name__}, which JSON has not")


def event_schema(event_type: EventType) -> dict[str, Any]:
    """The schema of the whole body an endpoint receives for `event_type`."""
    return {
        "$schema": DIALECT,
        "$id": f"urn:flexprice-webhooks:event-type:{event_type.name}",
        "title": event_type.name,
        "description": event_type.description,
        "type": "object",
        "required": ["webhook_type", "object_type", "data"],
        "properties": {
            "webhook_type": {"const": event_type.name},
            "object_type": {"const": event_type.object_type},
            "data": {
                "type": "object",
                "required": ["object"],
                "properties": {"object": value_schema(event_type.example)},
            },
        },
    }


def example_body(event_type: EventType) -> dict[str, Any]:
    """The whole body an endpoint receives for the catalog's example of `event_type`."""
    return {
        "webhook_type": event_type.name,
        "object_type": event_type.object_type,
        "data": {"object": event_type.example},
    }


SCHEMAS: dict[str, dict[str, Any]] = {name: event_schema(t) for name, t in SUBSCRIBABLE_BY_NAME.items()}

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is(value: Any, json_type: str) -> bool:
    if isinstance(value, bool) and json_type in ("integer", "number"):
        return False  # JSON's true is no number, whatever Python says
    return isinstance(value, _JSON_TYPES[json_type])


Path = tuple[str | int, ...]


def violations(schema: dict[str, Any], value: Any, path: Path = ()) -> list[tuple[Path, str]]:
    """Where `value` breaks `schema`, and how: `[(path, message)]`, empty when it conforms."""
    found: list[tuple[Path, str]] = []
    if "const" in schema and value != schema["const"]:
        return [(path, f"must be {schema['const']!r}")]
    expected = schema.get("type")
    if expected is not None:
        types = expected if isinstance(expected, list) else [expected]
        if not any(_is(value, t) for t in types):
            return [(path, f"must be of type {' or '.join(types)}, not {type(value).__name__}")]
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                found.append(((*path, name), "is required"))
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                found += violations(sub, value[name], (*path, name))
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += violations(schema["items"], item, (*path, index))
    return found


VALIDATION_MODES = ("off", "strict")


@dataclass(frozen=True, slots=True)
class EventValidation:
    """Whose emissions are checked against their type's schema: `WEBHOOKS_VALIDATE_EVENTS` is `off`,
    `strict`, or tenant by tenant in the form of `WEBHOOKS_TENANT_WEIGHTS` (`acme:strict,*:off`; a tenant
    not named takes `*`'s mode, else off)."""

    strict_tenants: frozenset[str] = field(default_factory=frozenset)
    lax_tenants: frozenset[str] = field(default_factory=frozenset)
    strict_by_default: bool = False

    def strict_for(self, tenant: str) -> bool:
        if tenant in self.strict_tenants:
            return True
        return self.strict_by_default and tenant not in self.lax_tenants

    @classmethod
    def parse(cls, value: str) -> EventValidation:
        if value.strip() in VALIDATION_MODES:  # the same for every tenant
            return cls(strict_by_default=value.strip() == "strict")
        modes, default = parse_tenant_pairs(
            value,
            setting="WEBHOOKS_VALIDATE_EVENTS",
            what="mode",
            example="acme:strict,*:off",
            values="off or strict; or one of these alone, for every tenant",
            parse_value=_mode,
        )
        return cls(
            strict_tenants=frozenset(t for t, mode in modes.items() if mode == "strict"),
            lax_tenants=frozenset(t for t, mode in modes.items() if mode == "off"),
            strict_by_default=default == "strict",
        )


def _mode(raw: str) -> str:
    if raw not in VALIDATION_MODES:
        raise ValueError(raw)
    return raw
