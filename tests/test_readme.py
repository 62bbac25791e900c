"""The docs' tables stay true: every setting (docs/operating.md) and every route (docs/api.md) is in them,
and nothing that is gone; the README's Ports section names every port's setting; ordered delivery's
fields say the same in the OpenAPI document, the CLI and the docs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from api.main import create_app
from cli.main import build_parser
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SETTINGS_TABLE = (DOCS / "operating.md").read_text()
API_TABLE = (DOCS / "api.md").read_text()
ROW = re.compile(r"^\| `([^`]+)`", re.M)  # a table row's first cell, when it is code
FIRST_CELL = re.compile(r"^\| (`[^|]*?`(?:, ?`[^|]*?`)*) \|", re.M)
GONE = {("GET", "/v1/webhooks/jwks.json")}  # 410, out of the OpenAPI schema, documented for old clients


def _documented_settings() -> set[str]:
    names: set[str] = set()
    for cell in FIRST_CELL.findall(SETTINGS_TABLE):
        names.update(re.findall(r"WEBHOOKS_[A-Z0-9_]+", cell))
    return names


def _documented_routes() -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for cell in ROW.findall(API_TABLE):
        found = re.fullmatch(r"((?:GET|POST|PATCH|DELETE)(?:\\?\|(?:GET|POST|PATCH|DELETE))*) (/\S*)", cell)
        if found:
            path = re.sub(r"\{[^}]*\}", "{}", found.group(2).split("?")[0])
            routes.update((method, path) for method in re.split(r"\\?\|", found.group(1)))
    return routes


def test_every_setting_has_a_row_in_the_settings_table() -> None:
    settings = {f"WEBHOOKS_{name.upper()}" for name in Settings.model_fields}
    documented = _documented_settings()
    assert settings - documented == set(), "settings missing from the table of docs/operating.md"
    assert documented - settings == set(), "docs/operating.md documents settings that do not exist"


def test_every_route_has_a_row_in_the_api_table() -> None:
    schema = create_app(Settings(api_keys="t:k")).openapi()
    served = GONE | {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
        for path, operations in schema["paths"].items()
        for method in operations
    }
    documented = _documented_routes()
    assert served - documented == set(), "routes missing from the table of docs/api.md"
    assert {r for r in documented - served if r[1].startswith("/v1/")} == set(), "documented, not served"


def test_the_readme_says_how_to_change_every_port() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Ports\n") :].split("\n## ")[1]
    settings = {f"WEBHOOKS_{name.upper()}" for name in Settings.model_fields if name.endswith("_port")}
    make = set(re.findall(r"\$\$\{([A-Z_]+_PORT)\b", (ROOT / "Makefile").read_text()))
    assert settings and make, "no port settings found: has this test gone stale?"
    missing = sorted(name for name in settings | make if f"`{name}`" not in section)
    assert missing == [], f"ports the README's Ports section does not say how to change: {missing}"


def _schema_property(schema: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][model]["properties"][field]
    return found


def test_ordered_delivery_says_the_same_in_the_openapi_document_the_cli_and_the_docs() -> None:
    """Issue 21's names (`ordered`, `ordered_on_failure`, `ordering_key`): described wherever the API shows
    them, with the same choices as the CLI's flags and docs/delivery.md's "Ordered delivery"."""
    schema = create_app(Settings(api_keys="t:k")).openapi()
    fields = [
        (model, field)
        for model in ("EndpointCreate", "EndpointUpdate", "EndpointPublic")
        for field in ("ordered", "ordered_on_failure")
    ] + [("EventCreate", "ordering_key"), ("LanePublic", "full")]
    undescribed = [f"{m}.{f}" for m, f in fields if not _schema_property(schema, m, f).get("description")]
    assert undescribed == [], "fields of ordered delivery without a description in the OpenAPI document"
    choices = set(schema["components"]["schemas"]["OrderedOnFailure"]["enum"])
    section = (DOCS / "delivery.md").read_text().split("## Ordered delivery")[1].split("\n## ")[0]
    assert all(f'`"{choice}"`' in section for choice in choices), "docs/delivery.md names every choice"
    described = _schema_property(schema, "EndpointPublic", "ordered_on_failure")["description"]
    assert all(f"`{choice}`" in described for choice in choices)

    parser = build_parser()
    added = parser.parse_args(["endpoints", "add", "https://x.example", "--ordered", "--on-failure", "skip"])
    assert (added.ordered, added.on_failure) == (True, "skip")
    assert parser.parse_args(["endpoints", "add", "https://x.example"]).on_failure == "block"  # the API's
    updated = parser.parse_args(["endpoints", "update", "ep_1", "--unordered", "--on-failure", "block"])
    assert (updated.ordered, updated.on_failure) == (False, "block")
    emitted = parser.parse_args(["events", "emit", "invoice.created", "--ordering-key", "cus_1"])
    assert emitted.ordering_key == "cus_1"
    for choice in choices:  # the CLI takes exactly the API's choices
        assert parser.parse_args(["endpoints", "update", "ep_1", "--on-failure", choice]).on_failure == choice
    with pytest.raises(SystemExit):
        parser.parse_args(["endpoints", "update", "ep_1", "--on-failure", "retry"])
