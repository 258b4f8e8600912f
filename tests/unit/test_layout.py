"""The layers of docs/architecture.md: no import points up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = {"coffee_orders_cli", "coffee_orders_client"}
TOOLING = {"coffee_orders_localkafka", "coffee_orders_devtools"}
SERVICES = {"coffee_orders_common", "coffee_orders_producer", "coffee_orders_consumer"}
ABOVE_EVERYTHING = {"tests", "bench"}
FORBIDDEN = {
    "gen/python": CLIENTS | TOOLING | SERVICES | ABOVE_EVERYTHING,
    "services": CLIENTS | TOOLING | ABOVE_EVERYTHING,
    "clients/python": ABOVE_EVERYTHING,
    "tooling": CLIENTS | ABOVE_EVERYTHING,
    "bench": {"tests"},
}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_import_points_up(folder: str) -> None:
    wrong = {
        f"{path.relative_to(ROOT)} imports {sorted(found)}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (found := _imported_roots(path) & FORBIDDEN[folder])
    }
    assert not wrong, "\n".join(sorted(wrong))
