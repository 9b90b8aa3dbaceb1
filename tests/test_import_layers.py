"""The import direction docs/architecture.md draws: every module of `plugin/` and `adapters/` sits in
one layer, and imports only modules of its own layer or of layers below it. Within a layer, no
module imports another that (directly or not) imports it back. Every import counts: at module
level, inside functions, under `TYPE_CHECKING`, and the packages an import runs the `__init__` of.

A layer is a list of module prefixes; a module belongs to the layer of its longest matching prefix.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("plugin", "adapters")

# Top first. Data flows down the stages (intake → ledger → pipelines → executor → adapters →
# evidence/documents); what wakes or serves them sits on top, what they all stand on at the bottom.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("commands", ("plugin.cli",)),
    ("app", ("plugin.app", "plugin.http_server")),
    ("surfaces", ("plugin.admin", "plugin.intake")),
    ("clocks", ("plugin.clocks", "plugin.minimise")),
    ("sweeps", ("plugin.sweeps",)),
    ("pipelines", ("plugin.pipelines",)),
    ("executor", ("plugin.executor",)),
    ("documents", ("plugin.documents",)),
    ("adapters", ("adapters", "plugin.connections", "plugin.notifications", "plugin.outbox")),
    ("shopify", ("plugin.shopify",)),
    ("runtime", ("plugin.runtime", "plugin.rate_limits", "plugin.cost_throttle")),
    ("migrations", ("plugin.migrate", "plugin.migrations")),
    (
        "records",
        (
            "plugin.ledger",
            "plugin.legal_holds",
            "plugin.evidence",
            "plugin.keys",
            "plugin.locks",
            "plugin.controller",
            "plugin.retention",
        ),
    ),
    ("provider toolkit", ("adapters.errors", "adapters.http", "adapters.recipients")),
    (
        "foundation",
        (
            "plugin",  # the package's own __init__
            "plugin.settings",
            "plugin.logs",
            "plugin.timing",
            "plugin.states",
            "plugin.crypto",
            "plugin.db",
            "plugin.models",
            "plugin.manifest",
            "plugin.i18n",
            "plugin.holdings",
        ),
    ),
)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # `from a import b` imports the module a.b when there is one, else a name of a.
            candidates = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def layer_of(name: str) -> int:
    best, depth = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    return best


def graph() -> dict[str, set[str]]:
    known = modules()
    direct = {name: imports(name, path, known) for name, path in known.items()}
    # Importing a.b.c runs a/__init__ and a/b/__init__ first: a package that imports anything
    # itself counts as imported too.
    edges: dict[str, set[str]] = {}
    for name, targets in direct.items():
        edges[name] = set(targets)
        for target in targets:
            parent = target.rpartition(".")[0]
            while parent:
                if direct.get(parent) and parent != name and not name.startswith(parent + "."):
                    edges[name].add(parent)
                parent = parent.rpartition(".")[0]
    return edges


def test_every_module_has_a_layer() -> None:
    assert [name for name in graph() if layer_of(name) < 0] == []


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in sorted(graph().items())
        for target in sorted(targets)
        if layer_of(target) < layer_of(name)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    # Tarjan's strongly connected components; any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert cycles == []


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The check itself: upward imports planted in a copy of `plugin/evidence.py`, at module level,
    inside a function and under TYPE_CHECKING, are each found and each point up."""
    planted = tmp_path / "evidence.py"
    planted.write_text(
        "from typing import TYPE_CHECKING\n"
        "from plugin.executor import leases\n"
        "if TYPE_CHECKING:\n"
        "    from plugin.sweeps.run import run_sweep\n"
        "def f() -> None:\n"
        "    from adapters.klaviyo import Klaviyo\n",
        encoding="utf-8",
    )
    found = imports("plugin.evidence", planted, modules())
    assert found == {"plugin.executor.leases", "plugin.sweeps.run", "adapters.klaviyo"}
    assert all(layer_of(target) < layer_of("plugin.evidence") for target in found)
