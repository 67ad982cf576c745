"""The package's import graph has no cycles: no module imports one that imports it back, at the top of a file or
inside a function (a lazy import hides a cycle; it does not remove it)."""

import ast
from pathlib import Path

import gridcnn

PACKAGE = Path(gridcnn.__file__).parent


def module_names() -> dict:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("gridcnn", *path.relative_to(PACKAGE).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports_of(name: str, path: Path, modules: dict) -> set:
    """The package modules ``name`` imports anywhere in its file; ``from . import x`` counts as importing module x
    when there is one (and as importing the package itself when x is a name defined there)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
    return {m for m in found if m in modules and m != name}


def test_no_module_imports_one_that_imports_it_back():
    modules = module_names()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    cycles = sorted(f"{a} -> {b} -> ... -> {a}" for a in graph for b in graph[a] if a in reachable(b))
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_a_cycle_hidden_in_a_function(tmp_path):
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from . import a\n")
    modules = {"gridcnn.a": tmp_path / "a.py", "gridcnn.b": tmp_path / "b.py"}
    assert imports_of("gridcnn.a", tmp_path / "a.py", modules) == {"gridcnn.b"}
    assert imports_of("gridcnn.b", tmp_path / "b.py", modules) == {"gridcnn.a"}
