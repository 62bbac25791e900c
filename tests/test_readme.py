"""The docs' tables stay true: every setting (docs/operating.md) and every route (docs/api.md) is in them,
and nothing that is gone; the README's Ports section names every port's setting."""

from __future__ import annotations

import re
from pathlib import Path

from api.main import create_app
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
