"""The project's modules import one another without a circle: every import counts, those
inside functions too (they still tie the modules together), except those under
``if TYPE_CHECKING:``, which never run. An import names a module, not its parent packages
(importing ``laws.search.plans`` runs ``laws/search/__init__.py`` first, as Python does for any
package, without the package depending on the module)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("laws", "sim", "validate", "shapeshift")


def module_files() -> dict[str, Path]:
    """Every module of the project by its dotted name (a package by its own name)."""
    files = {"cli": ROOT / "cli.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(tree: ast.Module, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The modules among ``modules`` that ``tree`` (module ``name``) imports: ``from a import
    b`` imports module ``a.b`` where there is one, else a name from ``a``."""
    found: set[str] = set()
    base = name.split(".") if is_package else name.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = ".".join(base[:len(base) - node.level + 1] if node.level else [])
            module = ".".join(part for part in (parent, node.module or "") if part)
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules
                          else module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each project module and the project modules it imports."""
    files = module_files()
    graph = {}
    for name, path in files.items():
        names = _imported(ast.parse(path.read_text()), name, path.name == "__init__.py",
                          set(files))
        graph[name] = {module for module in names if module in files} - {name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports in ``graph`` (its modules, the first repeated at the end), or
    None."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        return list(err.args[1])
    return None


def test_no_module_imports_itself_through_others():
    graph = import_graph()
    assert {"cli", "laws.search.plans", "validate.loop"} <= set(graph)  # it found them
    assert cycle(graph) is None, " -> ".join(cycle(graph))


def test_a_circle_is_found():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) in (
        ["a", "c", "b", "a"], ["a", "b", "c", "a"], ["b", "a", "c", "b"],
        ["c", "b", "a", "c"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])


def test_plan_is_the_function_and_plans_the_module():
    import importlib

    from laws.search import plan

    assert callable(plan) and plan is importlib.import_module("laws.search.plans").plan


LAYERS = ("shapeshift", "validate", "sim", "laws")  # data flows down this list, never up


def _layer(module: str) -> int:
    top = module.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else -1  # cli.py sits above them all


def test_data_flows_one_way_and_only_the_commands_know_click():
    files = module_files()
    upward = [f"{name} imports {imported}" for name, imports in import_graph().items()
              for imported in imports if _layer(imported) < _layer(name)]
    clicking = [name for name, path in files.items() if _layer(name) > 0
                and "click" in _imported(ast.parse(path.read_text()), name,
                                         path.name == "__init__.py", set(files))]
    assert {"shapeshift.commands.options", "validate.switches"} <= set(files)  # it found them
    assert upward == []
    assert clicking == []


def test_an_upward_import_is_a_lower_layer_rank():
    assert _layer("laws.fit") > _layer("sim.run") > _layer("validate.loop") > _layer("shapeshift")
    assert _layer("cli") < _layer("shapeshift.commands.options")
