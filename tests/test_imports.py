"""The package reads in one direction: no import cycle, and no stage importing a later one.

Read from the source (every import statement, those inside functions too), so the test needs no framework.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The stages in the order data flows through them; a stage imports only stages before it. Evaluation sits before
# training because a run scores itself with it; serving and evaluation share a rank (neither imports the other).
STAGES = {"corpora": 0, "features": 1, "records": 2, "data": 3, "models": 4, "evaluation": 5, "serving": 5,
          "training": 6, "tuning": 7}
# What every stage may use: no stage of the package.
FOUNDATION = ("emotf.catalog", "emotf.config", "emotf.interrupts", "emotf.pretrained")


def _modules(package: str, root: Path = ROOT) -> dict[str, Path]:
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _graph(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the package's modules it imports}, a `from package.x import name` counted as package.x.name where
    that is a module."""
    mods = _modules(package, root)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - (node.level - is_pkg)]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != name:
                    edges[name].add(t)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found, state = [], {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack)
        stack.pop()
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m, [])
    return found


@pytest.mark.parametrize("package", ["emotf", "experiments"])
def test_no_module_imports_itself_through_others(package):
    assert _cycles(_graph(package)) == []


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_no_stage_imports_a_later_one():
    backwards = []
    for a, targets in _graph("emotf").items():
        for b in targets:
            sa, sb = _stage(a), _stage(b)
            if sa and sb and sa != sb and STAGES[sb] >= STAGES[sa]:
                backwards.append(f"{a} -> {b}")
    assert backwards == []


def test_the_foundation_and_early_stages_never_import_training():
    edges = _graph("emotf")
    early = [m for m in edges if m in FOUNDATION or m == "emotf.runs" or _stage(m) in (
        "corpora", "features", "records", "data", "models", "evaluation", "serving")]
    assert [f"{m} -> {t}" for m in early for t in edges[m] if t.startswith(("emotf.training", "emotf.tuning"))] == []
    assert [f"{m} -> {t}" for m in FOUNDATION for t in edges[m] if _stage(t)] == []


def test_the_ledger_knows_run_folders_not_the_grid():
    grid = {"experiments.plan", "experiments.run", "experiments.report"}
    assert not grid & _graph("experiments")["experiments.ledger"]


def test_the_graph_reader_sees_a_cycle_through_an_import_inside_a_function(tmp_path):
    """The checks above can fail: a made-up package whose cycle closes inside a function, relatively."""
    pkg = tmp_path / "emotf" / "data"
    pkg.mkdir(parents=True)
    (tmp_path / "emotf" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from emotf.data import b\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    from emotf.training import x\n")
    (tmp_path / "emotf" / "training.py").write_text("")
    edges = _graph("emotf", tmp_path)
    assert _cycles(edges) == [["emotf.data.a", "emotf.data.b", "emotf.data.a"]]
    assert edges["emotf.data.b"] == {"emotf.data.a", "emotf.training"}
