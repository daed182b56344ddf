"""The interpreter layers one way: no import cycle, no import inside a function to dodge one.

The layers, bottom to top: ir/errors -> parse/check/unroll (and lowering, the
executor) -> compiled -> program -> engine -> polish/tune -> policy/records/
restarts -> model. The interpreter imports nothing of the project's other
packages (search, library_store, experiments import it).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "interpreter"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")

# Imports a function may make lazily: heavy or platform-specific third-party/stdlib modules, each with why.
LAZY_OK = {
    "ctypes": "memory.py: glibc's mallopt, only on Linux",
}
OTHER_PACKAGES = ("search", "library_store", "experiments", "benchmarks", "ray", "mlflow")


def _target(node: ast.AST, module: str) -> list[str]:
    """Names of the modules ``node`` (an import statement in ``interpreter/<module>.py``) imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level == 0:
        return [node.module or ""]
    if node.level == 1:  # from .x import y, or from . import x
        if node.module:
            return [f"ntpt_dist.interpreter.{node.module}"]
        return [f"ntpt_dist.interpreter.{alias.name}" for alias in node.names]
    return [f"ntpt_dist.{node.module or ''}"]  # from ..x import y: another package of ntpt_dist


def _interpreter_module(name: str) -> str | None:
    prefix = "ntpt_dist.interpreter."
    if name.startswith(prefix):
        stem = name[len(prefix):].split(".")[0]
        return stem if stem in MODULES else None
    return None


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(module: str) -> tuple[list[str], list[tuple[int, str]]]:
    """(module-level imports, function-level imports with their line) of one interpreter module;
    imports under ``if TYPE_CHECKING:`` are for annotations only and are left out."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    top, inner = [], []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names = _target(child, module)
                if in_function:
                    inner.extend((child.lineno, n) for n in names)
                else:
                    top.extend(names)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, inner


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module in MODULES:
        top, _ = _imports(module)
        graph[module] = {m for m in map(_interpreter_module, top) if m is not None and m != module}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_the_checker_sees_a_cycle_and_the_imports_it_parses():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    assert "errors" in _graph()["program"] and "compiled" in _graph()["model"]  # relative imports are read
    assert len(MODULES) > 25


def test_the_interpreter_has_no_import_cycle():
    assert _cycle(_graph()) is None, f"import cycle in interpreter/: {' -> '.join(_cycle(_graph()))}"


def test_the_layers_point_one_way():
    graph = _graph()

    def below(module: str) -> set[str]:
        seen, todo = set(), [module]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    order = ["errors", "ir", "parse", "check", "unroll", "compiled", "program", "engine", "polish", "tune",
             "policy", "records", "restarts", "model"]
    assert not below("compiled") & {"program", "engine", "model", "restarts"}
    assert not below("program") & {"engine", "polish", "tune", "model", "restarts"}
    assert not below("engine") & {"polish", "tune", "model", "restarts"}
    assert not below("restarts") & {"model"}
    assert set(order) <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_no_function_imports_another_interpreter_module_or_package(module):
    _, inner = _imports(module)
    for line, name in inner:
        where = f"interpreter/{module}.py:{line} imports {name} inside a function"
        assert _interpreter_module(name) is None and not name.startswith("ntpt_dist"), where
        assert name.split(".")[0] in LAZY_OK, f"{where}; import it at module level or list it in LAZY_OK"


@pytest.mark.parametrize("module", MODULES)
def test_no_module_imports_another_package_of_the_project(module):
    top, inner = _imports(module)
    for name in top + [n for _, n in inner]:
        parts = name.split(".")
        other = parts[1] if parts[0] == "ntpt_dist" and len(parts) > 1 else parts[0]
        assert other not in OTHER_PACKAGES, f"interpreter/{module}.py imports {name}"


def test_each_module_imports_alone():
    """Every module imports with nothing of the package loaded before it (one fresh interpreter,
    ``ntpt_dist`` cleared from ``sys.modules`` before each import)."""
    code = (
        "import importlib, sys\n"
        "import numpy, torch\n"  # third-party stays loaded: only the package's own modules are cleared
        f"for m in {MODULES!r}:\n"
        "    for k in [k for k in sys.modules if k == 'ntpt_dist' or k.startswith('ntpt_dist.')]:\n"
        "        del sys.modules[k]\n"
        "    importlib.import_module('ntpt_dist.interpreter.' + m)\n"
        "    assert not any(k.startswith(('ntpt_dist.search', 'ntpt_dist.library_store', 'ntpt_dist.experiments'))\n"
        "                   for k in sys.modules), m\n"
        "print(len(" + repr(MODULES) + "))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(len(MODULES))
