"""The README's tables stay true: every setting and every route is in them, and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

from api.main import create_app
from core.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
ROW = re.compile(r"^\| `([^`]+)`", re.M)  # a table row's first cell, when it is code
FIRST_CELL = re.compile(r"^\| (`[^|]*?`(?:, ?`[^|]*?`)*) \|", re.M)
GONE = {("GET", "/v1/webhooks/jwks.json")}  # 410, out of the OpenAPI schema, documented for old clients


def _documented_settings() -> set[str]:
    names: set[str] = set()
    for cell in FIRST_CELL.findall(README):
        names.update(re.findall(r"WEBHOOKS_[A-Z0-9_]+", cell))
    return names


def _documented_routes() -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for cell in ROW.findall(README):
        found = re.fullmatch(r"((?:GET|POST|PATCH|DELETE)(?:\\?\|(?:GET|POST|PATCH|DELETE))*) (/\S*)", cell)
        if found:
            path = re.sub(r"\{[^}]*\}", "{}", found.group(2).split("?")[0])
            routes.update((method, path) for method in re.split(r"\\?\|", found.group(1)))
    return routes


def test_every_setting_has_a_row_in_the_settings_table() -> None:
    settings = {f"WEBHOOKS_{name.upper()}" for name in Settings.model_fields}
    documented = _documented_settings()
    assert settings - documented == set(), "settings missing from the README's table"
    assert documented - settings == set(), "the README documents settings that do not exist"


def test_every_route_has_a_row_in_the_api_table() -> None:
    schema = create_app(Settings(api_keys="t:k")).openapi()
    served = GONE | {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
        for path, operations in schema["paths"].items()
        for method in operations
    }
    documented = _documented_routes()
    assert served - documented == set(), "routes missing from the README's API table"
    assert {r for r in documented - served if r[1].startswith("/v1/")} == set(), "documented, not served"
