"""The package layout holds: one import root, production apart from dev tools, no cycles.

Every module under worker/ and cli/ is parsed (not imported) and its imports read,
including those inside functions, so the rules hold for lazy imports too:

(a) imports go through ``traderctl.…``, never the top-level ``worker`` or ``cli``
    (those names exist only as directories; importing them makes a second copy of every
    module);
(b) production code (``traderctl.worker`` except ``traderctl.worker.local``) never imports
    the dev tools (``traderctl.worker.local``) or the CLI (``traderctl.cli``);
(c) the module-level imports between ``traderctl.worker`` modules have no cycle;
(d) no module is longer than MAX_LINES, so modules stay of one responsibility.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"worker": "traderctl.worker", "cli": "traderctl.cli"}
MAX_LINES = 450
PRODUCTION = "traderctl.worker"
DEV_ONLY = ("traderctl.worker.local", "traderctl.cli")


@dataclass(frozen=True)
class Import:
    """One imported module name, where it appears and whether at module level."""

    target: str
    line: int
    top_level: bool


def _modules() -> dict[str, Path]:
    """{dotted name: path} of every module under worker/ and cli/."""
    found: dict[str, Path] = {}
    for directory, package in PACKAGES.items():
        for path in sorted((ROOT / directory).rglob("*.py")):
            parts = path.relative_to(ROOT / directory).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> Iterator[Import]:
    """Every module ``module`` imports; ``from a import b`` yields ``a.b`` when that is a
    module of ours, else ``a``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = {id(n) for n in tree.body}
    # Imports under a module-level `if` or `try` run on import too, except those under
    # `if TYPE_CHECKING:`, which only the type checker follows (they cannot form a cycle).
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            continue
        if isinstance(stmt, ast.If | ast.Try):
            top.update(id(n) for n in ast.walk(stmt))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno, id(node) in top)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                target = candidate if candidate in MODULES else base
                yield Import(target, node.lineno, id(node) in top)


IMPORTS = {name: list(_imports(name, path)) for name, path in MODULES.items()}


def _where(module: str, imp: Import) -> str:
    return f"{MODULES[module].relative_to(ROOT)}:{imp.line} imports {imp.target}"


def test_the_walk_finds_the_packages() -> None:
    assert "traderctl.worker.config" in MODULES
    assert "traderctl.cli.worker" in MODULES
    assert any(imp.target == "traderctl.worker.config" for imp in IMPORTS["traderctl.cli.worker"])


def test_imports_go_through_traderctl() -> None:
    bad = [
        _where(module, imp)
        for module, imports in IMPORTS.items()
        for imp in imports
        if imp.target.split(".")[0] in PACKAGES
    ]
    assert not bad, "import traderctl.worker… / traderctl.cli…, not worker/cli:\n" + "\n".join(bad)


def test_production_code_does_not_import_dev_tools_or_the_cli() -> None:
    bad = [
        _where(module, imp)
        for module, imports in IMPORTS.items()
        if module.startswith(PRODUCTION) and not module.startswith(DEV_ONLY)
        for imp in imports
        if any(imp.target == d or imp.target.startswith(d + ".") for d in DEV_ONLY)
    ]
    assert not bad, "production modules must not import worker.local or cli:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_in_the_worker() -> None:
    worker = {m for m in MODULES if m.startswith(PRODUCTION)}
    graph: dict[str, set[str]] = {m: set() for m in worker}
    for module in worker:
        for imp in IMPORTS[module]:
            if not imp.top_level or imp.target == module:
                continue
            # `from traderctl.worker import queries` targets a module; a package import
            # (`import traderctl.worker.x`) also runs the package's __init__.
            if imp.target in worker:
                graph[module].add(imp.target)
    cycles = _cycles(graph)
    assert not cycles, "import cycles between worker modules:\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_modules_stay_small() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them by responsibility): {long}"
