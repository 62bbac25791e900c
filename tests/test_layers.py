"""The import rule (docs/architecture.md, "Layers"): a package imports only from the packages below it, so
that a change low down never has to know what is built on it. `make lint` runs this file."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each package, and the packages of ours it may import besides its own. Workflows and activities are one
# layer: a workflow names the activities it runs, and the recovery activity starts delivery workflows.
MAY_IMPORT: dict[str, set[str]] = {
    "domain": set(),
    "core": {"domain"},
    "store": {"domain", "core"},
    "history": {"domain", "core"},
    "activities": {"domain", "core", "store", "history", "workflows"},
    "workflows": {"domain", "core", "store", "history", "activities"},
    "service": {"domain", "core", "store", "history", "workflows", "activities"},
    "api": {"domain", "core", "store", "history", "workflows", "activities", "service"},
    "cli": {"domain", "core", "store"},
}
# The processes' entry points sit on top and may import any package but the other front doors.
ENTRY_POINTS = {"worker.py", "launcher.py", "bootstrap.py"}
OURS = set(MAY_IMPORT) | {path.removesuffix(".py") for path in ENTRY_POINTS}


def _imported(path: Path, root: Path) -> set[str]:
    """The top-level packages of ours that `path` imports, anywhere in it (functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            found.add(path.relative_to(root).parts[0])  # relative: within its own package
    return found & OURS


def _violations(root: Path) -> list[str]:
    wrong = []
    for package, allowed in MAY_IMPORT.items():
        for path in sorted((root / package).rglob("*.py")):
            for imported in sorted(_imported(path, root) - allowed - {package}):
                wrong.append(f"{path.relative_to(root)} imports {imported}")
    for name in sorted(ENTRY_POINTS):
        if (root / name).exists():
            for imported in sorted(_imported(root / name, root) & {"api", "cli"}):
                wrong.append(f"{name} imports {imported}")
    return wrong


def test_no_package_imports_from_a_layer_above_it() -> None:
    assert _violations(ROOT) == []


def test_the_rule_sees_an_import_from_above_even_inside_a_function(tmp_path: Path) -> None:
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "ids.py").write_text(
        "def probe() -> None:\n    from service.errors import NotFound\n"
    )
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "keys.py").write_text("import core.crypto\nfrom . import tables\nimport api.main\n")
    assert _violations(tmp_path) == ["domain/ids.py imports service", "store/keys.py imports api"]
