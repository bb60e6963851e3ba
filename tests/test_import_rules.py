"""The import rules, read from the source (ast), so CI fails when one is broken:

- the engine imports no front end: nothing of tui, Textual, Rich or argparse under engine/ (the command line is
  tui/cli/, a front end beside the app);
- the engine prints nothing: its callers say what they want said (the sweep's progress reaches tui/cli/sweep.py as
  callbacks);
- no import cycles among the project's modules, counting imports inside functions (they run too) and those under
  `if TYPE_CHECKING:` (an annotation that names a module is a dependency on it all the same: what a module needs of
  another it declares as a Protocol, as tui/app/hosts.py does for the screens);
- engine.sweep loads neither Optuna nor torch when imported: the command line's parser and the app import it, and
  the sweep's monitor process never trains.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "tui")
FRONT_ENDS = ("tui", "textual", "rich", "argparse", "textual_serve", "aiohttp")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imports(path: Path) -> list[tuple[str, int]]:
    """(module imported, line) for every import: at the top, in functions, under TYPE_CHECKING."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            # `from engine import events` imports the module engine.events
            found.extend((f"{node.module}.{alias.name}", node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


ENGINE = {name: path for name, path in sources().items() if name.split(".")[0] == "engine"}


@pytest.mark.parametrize("name", sorted(ENGINE))
def test_the_engine_imports_no_front_end(name: str) -> None:
    wrong = [
        f"{ENGINE[name].relative_to(ROOT)}:{line} imports {module}"
        for module, line in imports(ENGINE[name])
        if module.split(".")[0] in FRONT_ENDS
    ]
    assert not wrong, wrong


@pytest.mark.parametrize("name", sorted(ENGINE))
def test_the_engine_prints_nothing(name: str) -> None:
    path = ENGINE[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    prints = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
    ]
    assert not prints, prints


def test_no_import_cycles() -> None:
    modules = sources()
    graph = {
        name: sorted({module for module, _ in imports(path) if module in modules and module != name})
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, str] = {}  # visiting, done
    stack: list[str] = []

    def walk(name: str) -> None:
        state[name] = "visiting"
        stack.append(name)
        for target in graph[name]:
            if state.get(target) == "visiting":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                walk(target)
        stack.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            walk(name)
    assert not cycles, f"{len(cycles)} import cycles: " + "; ".join(" → ".join(cycle) for cycle in cycles)


def test_annotation_imports_are_counted() -> None:
    """An import under `if TYPE_CHECKING:` is an edge too: the checkpoint flow names its Trainer only there."""
    found = {module for module, _ in imports(ROOT / "tui" / "app" / "checkpoint_flow.py")}
    assert "engine.trainer" in found


def test_the_rules_see_imports() -> None:
    """The checks above read real imports: the app imports Textual, the engine's session the trainer."""
    assert any(module.startswith("textual") for module, _ in imports(ROOT / "tui" / "app" / "app.py"))
    assert "engine.trainer" in {module for module, _ in imports(ROOT / "engine" / "session.py")}
    assert len(ENGINE) > 20


def test_importing_the_sweep_loads_neither_optuna_nor_torch() -> None:
    heavy = ("optuna", "torch", "sqlalchemy")
    code = f"import sys, engine.sweep; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
