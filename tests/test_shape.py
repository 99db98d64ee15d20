"""The code's shape stays findable: limits a reviewer would otherwise check by hand.

- no import cycle inside core (function-local imports count: they hide a cycle, not break it;
  only ``if TYPE_CHECKING:`` imports are left out, as they never run);
- a rule module imports no other rule, nor the checklist or the assessment (a rule is read on
  its own, and the views build on the rules, not the other way round);
- no function in core above cyclomatic complexity 40, none in a rule module above 20 (radon);
- no class in core with more than 30 instance attributes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "core"
RULES = CORE / "diagnose" / "rules"

MAX_COMPLEXITY = 40
MAX_RULE_COMPLEXITY = 20
MAX_ATTRIBUTES = 30
# A table, not a state: every field is one documented config key (the README's generated table),
# and grouping them would rename the keys users have in their config files.
ATTRIBUTE_EXEMPT = {("config.py", "Thresholds")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in CORE.rglob("*.py"):
        parts = list(path.relative_to(CORE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return hidden


def _imports(name: str, path: Path) -> set[str]:
    """The core modules ``name`` imports, each as precisely as the statement names it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = _type_checking_nodes(tree)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([p for p in [*base, *(node.module or "").split(".")] if p])
            elif (node.module or "").startswith("sfttop.core"):
                target = node.module[len("sfttop.core") :].lstrip(".") if node.module else ""
            else:
                continue
            subs = [f"{target}.{a.name}".lstrip(".") for a in node.names]
            # ``from . import x`` names the submodule x; ``from .m import f`` names m.
            named = [s for s in subs if s in MODULES]
            found.update(named if named else [target] if target in MODULES else [])
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sfttop.core."):
                    mod = a.name[len("sfttop.core.") :]
                    if mod in MODULES:
                        found.add(mod)
    found.discard(name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on:
                    low[v] = min(low[v], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_local_and_absolute_imports() -> None:
    """The graph is real: run imports pipe at the top, remote is imported inside a function."""
    assert {"pipe", "remote", "statefile"} <= GRAPH["run"]
    assert "diagnose" in GRAPH["checklist.engine"]  # an absolute sfttop.core import


def test_no_import_cycle_in_core() -> None:
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize("rule", sorted(n for n in MODULES if n.startswith("diagnose.rules.") and n != "diagnose.rules.base"))
def test_a_rule_imports_no_other_rule_nor_the_views(rule: str) -> None:
    bad = {m for m in GRAPH[rule] if m.startswith(("diagnose.rules.", "checklist", "assess")) and m != "diagnose.rules.base"}
    assert not bad, f"{rule} imports {sorted(bad)}"


def _functions() -> list[tuple[str, str, int]]:
    found = set()
    for name, path in sorted(MODULES.items()):
        for block in cc_visit(path.read_text(encoding="utf-8")):
            for item in [block, *getattr(block, "methods", [])]:
                if not hasattr(item, "methods"):  # a function or method, not the class itself
                    found.add((name, item.fullname, item.complexity))
    return sorted(found)


def test_no_function_in_core_is_too_complex() -> None:
    found = list(_functions())
    assert len(found) > 300, "radon saw too little: the walk is broken"
    over = [
        f"{mod}:{fn} ({cc})"
        for mod, fn, cc in found
        if cc > (MAX_RULE_COMPLEXITY if mod.startswith("diagnose.rules.") else MAX_COMPLEXITY)
    ]
    assert not over, "split these: " + ", ".join(over)


def _attributes(cls: ast.ClassDef) -> set[str]:
    names = {
        n.attr
        for n in ast.walk(cls)
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
        and isinstance(n.value, ast.Name) and n.value.id == "self"
    }
    names.update(s.target.id for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name))
    return names


def test_no_class_in_core_holds_too_much_state() -> None:
    over = []
    seen = 0
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                seen += 1
                n = len(_attributes(node))
                if n > MAX_ATTRIBUTES and (path.name, node.name) not in ATTRIBUTE_EXEMPT:
                    over.append(f"{path.relative_to(ROOT)}:{node.name} ({n})")
    assert seen > 50
    assert not over, "too many attributes: " + ", ".join(over)


# The adapter line (nvitop's tui/library, harlequin's import contracts): widgets take frozen view
# dataclasses and render them; the engine is read in tui/app.py and tui/views.py. Translation
# is the one core service a widget calls itself (its fixed labels are its own text).
WIDGET_MAY_IMPORT = {"sfttop.core.i18n"}


@pytest.mark.parametrize("widget", sorted((ROOT / "tui" / "widgets").glob("*.py")), ids=lambda p: p.name)
def test_widgets_reach_core_only_through_the_view_model(widget: Path) -> None:
    tree = ast.parse(widget.read_text(encoding="utf-8"))
    reached = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if (node.level >= 2 and (node.module or "").split(".")[0] == "core") or node.level >= 3:
                reached.add("sfttop.core." + (node.module or "").removeprefix("core").lstrip("."))
            elif (node.module or "").startswith("sfttop.core"):
                reached.add(node.module or "")
        elif isinstance(node, ast.Import):
            reached.update(a.name for a in node.names if a.name.startswith("sfttop.core"))
    assert reached <= WIDGET_MAY_IMPORT, f"{widget.name} imports {sorted(reached - WIDGET_MAY_IMPORT)}"


def test_tests_share_code_only_through_the_shared_modules() -> None:
    """Test modules import helpers, synth and the fake servers, never another test module or
    bench/ (a test must not break because another one was renamed or a benchmark changed)."""
    bad = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            )
            bad += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0].startswith("test_") or n.startswith("bench")]
    assert not bad, bad
