"""The package's import graph: no module imports one that imports it back, directly or through
others, at load time or inside a function."""

import ast
from pathlib import Path

import posesynth

PACKAGE = Path(posesynth.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(name: str) -> set[str]:
    """The posesynth modules ``name`` imports anywhere in its file (``from pkg import sub``: sub);
    posesynth imports absolutely only (``test_imports_are_absolute``)."""
    out = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                       for a in node.names)
    return {m for m in out if m in MODULES and m != name}


def cycle_through(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path of imports from ``start`` back to itself, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        name, path = stack.pop()
        for nxt in graph[name]:
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_the_walk_sees_the_imports():
    assert "posesynth.pose_source" in imported("posesynth.pose_sources")
    assert "posesynth.gan.checkpoint" in imported("posesynth.pose_sources")


def test_imports_are_absolute():
    relative = [name for name, path in MODULES.items()
                if any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(ast.parse(path.read_text())))]
    assert not relative


def test_no_module_imports_itself_back():
    graph = {name: imported(name) for name in MODULES}
    cycles = [path for name in MODULES if (path := cycle_through(name, graph))]
    assert not cycles, " -> ".join(cycles[0])
