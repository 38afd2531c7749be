"""The package layers: no module imports another that imports it back (directly or through a cycle), and no
package imports one above it (networks never see training, nothing below tools sees tools or the studio)."""

import ast
import itertools
from pathlib import Path

import styleforge

ROOT = Path(styleforge.__file__).parent
# Each layer may import those on its right only (plus the top-level modules registry, errors, images). The
# command line is cli.py and the tools' *_cmd.py wrappers.
LAYERS = ["cli", "studio", "tools", "training", "losses", "official", "inference", "metrics", "augment", "networks",
          "data", "ops"]


def module_imports() -> dict[str, set[str]]:
    """Module -> the styleforge modules it imports at run time (imports under TYPE_CHECKING excluded)."""
    graph = {}
    for path in ROOT.rglob("*.py"):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
        targets = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("styleforge"):
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}".replace(".", "/") in MODULE_PATHS
                            else node.module for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("styleforge")}
        graph[module] = targets - {module}
    return graph


MODULE_PATHS = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts).replace(".", "/")
                for p in ROOT.rglob("*.py")}


def layer(module: str) -> str:
    parts = module.split(".")
    if module.endswith("_cmd") or module == "styleforge.cli":
        return "cli"
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycles():
    graph = module_imports()
    # Importing a submodule imports its package first: that edge is no cycle of ours.
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in graph.get(m, ()):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)


def test_packages_import_only_the_layers_below():
    order = {name: i for i, name in enumerate(LAYERS)}
    upward = set()
    for module, targets in module_imports().items():
        for a, b in itertools.product([layer(module)], {layer(t) for t in targets}):
            if a in order and b in order and order[b] < order[a]:
                upward.add((module, b))
    assert not upward, f"imports of a higher layer: {sorted(upward)}"
