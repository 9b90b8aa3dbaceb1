"""The server tunes nothing process-wide: `gallra serve` runs intake, the workers, sweeps and the
admin side by side, so no part of it may switch the garbage collector or the interpreter's switch
interval for its own speed."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUNING = {("sys", "setswitchinterval"), ("sys", "setrecursionlimit")}


def _tuning(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if "gc" in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports gc")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in TUNING:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_of_the_app_tunes_the_interpreter() -> None:
    sources = [*ROOT.joinpath("plugin").rglob("*.py"), *ROOT.joinpath("adapters").rglob("*.py")]
    assert len(sources) > 50
    assert [line for path in sorted(sources) for line in _tuning(path)] == []
