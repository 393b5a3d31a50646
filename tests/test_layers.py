"""The import graph points down: the backend never imports the magics, the widgets or IPython,
display.py knows no training code, and no modules import each other in a circle (lazy imports
inside functions count too)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "nbllm"
MODULES = {
    ".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): p for p in ROOT.rglob("*.py")
}
TOP = {"nbllm", "nbllm.testing"}  # the package (load_ipython_extension) and the pytest helpers sit above all


def imports(name: str) -> set[str]:
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + [node.module] if node.module else base)
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        for target in candidates:
            if target.split(".")[0] == "IPython":
                found.add("IPython")
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imports(name) for name in MODULES}


def test_the_backend_never_imports_magics_widgets_or_ipython():
    upper = ("nbllm.magics", "nbllm.widgets")
    bad = {
        name: sorted(t for t in targets if t == "IPython" or t.startswith(upper))
        for name, targets in GRAPH.items()
        if name not in TOP and not name.startswith(upper)
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_display_knows_no_training_code():
    assert not {t for t in GRAPH["nbllm.display"] if t.startswith(("nbllm.train", "nbllm.lora"))}


def test_no_import_circles():
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in GRAPH.get(todo.pop(), ()):
                if nxt not in seen and nxt != "nbllm" and nxt in GRAPH:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    circles = sorted(name for name in GRAPH if name != "nbllm" and name in reach(name))
    assert circles == []
