"""The packages import downwards only (docs/architecture.md, Packages): the process packages never
import one another or the `alertq` command; what they share lives in broker/, delivery/, cores/,
state/ and schemas/, which import nothing above them (state/, the state store, nothing of alertq)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = {"broker", "delivery", "cores", "state", "schemas"}
# package -> the alertq packages it may import besides itself
MAY_IMPORT = {
    "producer": {"broker", "schemas"},
    "workers": SHARED,
    "escalator": SHARED,
    "ack_listener": SHARED,
    "cores": {"delivery", "schemas"},
    "delivery": {"schemas"},
    "state": set(),
    "broker": {"schemas"},
    "schemas": set(),
}
OURS = {*MAY_IMPORT, "alertq"}


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_a_package_imports_only_what_lies_below_it(package: str) -> None:
    wrong = {
        f"{path.relative_to(REPO)} imports {other}"
        for path in sorted((REPO / package).rglob("*.py"))
        for other in imported_packages(path) - MAY_IMPORT[package] - {package}
    }
    assert not wrong, "\n".join(sorted(wrong))
