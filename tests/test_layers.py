"""The package's layers and their import rules (DESIGN.md, "Layout"), held against the source.

The import graph is read from the source with ``ast``: every ``import`` and
``from ... import`` counts, including those inside functions (a lazy import still
runs), except under ``if TYPE_CHECKING:``. A module reaches what it imports, what
those import, and so on; importing ``a.b.c`` also runs ``a/__init__`` and
``a/b/__init__``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "bertforge"

# Bottom to top. A module may import its own layer and the layers below it, never above.
LAYERS = ["leaf", "text", "model", "io", "data", "training", "evaluation", "tasks", "apps", "serving", "cli"]
LEAF_MODULES = {"bertforge.errors", "bertforge.files", "bertforge.constants"}
# The public surface: the package itself re-exports names from every layer (lazily), and
# ``bertforge.keras`` is where users have always imported the Keras layer from.
PUBLIC_SURFACE = {"bertforge", "bertforge.keras", "bertforge.__main__"}

# Edges the rules allow on purpose, as (importing module, function it sits in, imported module prefix):
# a model class's own from_pretrained / save_pretrained open model directories lazily.
ALLOWED_LAZY = {
    ("bertforge.model.bert", "from_pretrained", "bertforge.io"),
    ("bertforge.model.bert", "save_pretrained", "bertforge.io"),
}

# Extra rules, beyond the layer order: (modules the rule is about, what they must never reach,
# exact module names excepted from that).
NEVER_REACH = [
    ("bertforge.text", ("torch", "bertforge.model", "bertforge.io", "bertforge.data"), ()),
    ("bertforge.model", ("bertforge.text", "bertforge.io", "bertforge.data"), ()),
    # files -> examples -> batches: of the model, only the token layout the batches carry
    ("bertforge.data", ("bertforge.model", "bertforge.io"), ("bertforge.model", "bertforge.model.layout")),
    ("bertforge.training.loop", ("bertforge.model", "bertforge.text", "bertforge.data"), ()),
    ("bertforge.training.distributed", ("bertforge.model", "bertforge.text", "bertforge.data"), ()),
    ("bertforge.evaluation", ("torch", "bertforge.model", "bertforge.io", "bertforge.data", "bertforge.training"), ()),
    ("bertforge.evaluation.metrics", ("matplotlib",), ()),
    ("bertforge.io.onnx", ("torch",), ()),
    # finding a model folder: an exported one opens with ONNX Runtime alone
    ("bertforge.io.model_paths", ("torch",), ()),
]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    function: str | None  # the enclosing function of a lazy import; None at module level
    line: int


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_sources(root: Path = PACKAGE) -> dict[str, str]:
    return {module_name(path, root): path.read_text(encoding="utf-8") for path in sorted(root.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, source: str, modules: set[str]) -> list[Edge]:
    """Every module ``module`` imports, with the function each import sits in."""
    package = module if _is_package(module, modules) else module.rpartition(".")[0]
    edges: list[Edge] = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child, function)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.Import):
            for alias in node.names:
                edges.append(Edge(module, alias.name, function, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            edges.append(Edge(module, target, function, node.lineno))
            for alias in node.names:  # ``from a import b`` where b is a module
                if f"{target}.{alias.name}" in modules:
                    edges.append(Edge(module, f"{target}.{alias.name}", function, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(source), None)
    return edges


def _is_package(module: str, modules: set[str]) -> bool:
    return any(other.startswith(module + ".") for other in modules)


def _with_parents(target: str, modules: set[str]) -> list[str]:
    """Importing ``a.b.c`` runs ``a``, ``a.b`` and ``a.b.c``: those of them that are ours."""
    parts = target.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in modules]


def import_graph(sources: dict[str, str]) -> dict[str, list[Edge]]:
    modules = set(sources)
    return {module: imports_of(module, source, modules) for module, source in sources.items()}


def reach(graph: dict[str, list[Edge]], start: str, skip: set[tuple[str, str]] = frozenset()) -> dict[str, list[str]]:
    """Everything ``start`` reaches (our modules and outside ones), each with one path to it."""
    modules = set(graph)
    paths = {start: [start]}
    pending = [start]
    while pending:
        current = pending.pop()
        for edge in graph.get(current, []):
            if (edge.source, edge.target) in skip:
                continue
            targets = _with_parents(edge.target, modules) if edge.target.startswith("bertforge") else [edge.target]
            for target in targets:
                if target not in paths:
                    paths[target] = paths[current] + [f"{target} (line {edge.line} of {current})"]
                    if target in modules:
                        pending.append(target)
    return paths


def layer_of(module: str) -> str | None:
    if module in PUBLIC_SURFACE:
        return None
    if module in LEAF_MODULES:
        return "leaf"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "unplaced"


def _allowed_lazy(edge: Edge) -> bool:
    return any(edge.source == source and edge.function == function and edge.target.startswith(prefix)
               for source, function, prefix in ALLOWED_LAZY)


def violations(sources: dict[str, str]) -> list[str]:
    """Every import that the layer rules forbid, one line each."""
    graph = import_graph(sources)
    problems = []
    allowed = {(edge.source, edge.target) for edges in graph.values() for edge in edges if _allowed_lazy(edge)}
    for module, edges in graph.items():
        layer = layer_of(module)
        if layer == "unplaced":
            problems.append(f"{module} sits in no layer; move it into one of {LAYERS}")
            continue
        if layer is None:
            continue
        for edge in edges:
            if not edge.target.startswith("bertforge") or _allowed_lazy(edge):
                continue
            for target in _with_parents(edge.target, set(graph)):
                other = layer_of(target)
                if other is not None and other != "unplaced" and LAYERS.index(other) > LAYERS.index(layer):
                    problems.append(f"{module} (line {edge.line}) imports {target}: {layer}/ may not reach "
                                    f"{other}/, a layer above it")
    for prefix, forbidden, excepted in NEVER_REACH:
        def bad(name: str) -> bool:
            return name not in excepted and any(name == bad or name.startswith(bad + ".") for bad in forbidden)

        for module in graph:
            if module != prefix and not module.startswith(prefix + "."):
                continue

            for reached, path in reach(graph, module, allowed).items():
                # one line per way in: the first forbidden module on a path, not all it pulls in after
                if bad(reached) and not any(bad(step.split(" ")[0]) for step in path[:-1]):
                    problems.append(f"{module} reaches {reached}: " + " -> ".join(path))
    return problems


def task_by_name_imports(sources: dict[str, str]) -> list[str]:
    """Imports of one task's own modules from outside ``tasks/``: the jobs, the service and export
    reach a task through the registry (``bertforge.tasks``) and its interface (``tasks/base.py``)."""
    seam = {"bertforge.tasks", "bertforge.tasks.base"}
    return [f"{edge.source} (line {edge.line}) imports {edge.target}: go through bertforge.tasks and its interface"
            for module, edges in import_graph(sources).items()
            if module not in PUBLIC_SURFACE and not module.startswith("bertforge.tasks")
            for edge in edges if edge.target.startswith("bertforge.tasks.") and edge.target not in seam]


def test_nothing_outside_tasks_names_a_task():
    assert not task_by_name_imports(read_sources())


def test_a_job_naming_a_task_fails_the_rule():
    sources = read_sources()
    sources["bertforge.apps.finetune"] += "\n\ndef _planted():\n    from bertforge.tasks.classification.task import KINDS\n"
    assert any("bertforge.apps.finetune" in problem for problem in task_by_name_imports(sources))


def test_the_package_keeps_its_layers():
    problems = violations(read_sources())
    assert not problems, "\n".join(problems)


def test_every_module_sits_in_a_layer():
    unplaced = [module for module in read_sources() if layer_of(module) == "unplaced"]
    assert not unplaced


@pytest.mark.parametrize(("module", "planted", "expected"), [
    # a lazy torch import in the tokenizer: text/ must never reach torch
    ("bertforge.text.tokenizer", "def _planted():\n    import torch\n", "reaches torch"),
    # the model reaching the text layer through a function-local import
    ("bertforge.model.bert", "def _planted():\n    from bertforge.text.tokenizer import Tokenizer\n",
     "bertforge.model.bert reaches bertforge.text"),
    # anything below cli/ importing cli/
    ("bertforge.data.corpus", "def _planted():\n    from bertforge.cli.app import main\n", "may not reach cli/"),
    # the loop reaching the model through a module it imports
    ("bertforge.training.distributed", "from bertforge.model import layout\n", "reaches bertforge.model"),
])
def test_a_planted_bad_import_fails_the_rules(module, planted, expected):
    sources = read_sources()
    assert not violations(sources)
    sources[module] += "\n\n" + planted
    assert any(expected in problem for problem in violations(sources))


def test_a_lazy_from_pretrained_is_the_one_model_to_io_edge():
    sources = read_sources()
    sources["bertforge.model.bert"] += "\n\ndef _planted():\n    from bertforge.io.model_dir import WEIGHT_FILES\n"
    assert any("model/ may not reach io/" in problem for problem in violations(sources))


@pytest.mark.parametrize("statement", ["import bertforge", "from bertforge import Tokenizer, InputExample",
                                       "import bertforge.text.features"])
def test_the_package_and_its_text_layer_import_without_torch(statement):
    code = f"import sys\n{statement}\nassert 'torch' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names_are_reexported():
    import importlib

    import bertforge

    for name in bertforge.__all__:
        assert getattr(bertforge, name) is getattr(importlib.import_module(bertforge._PUBLIC[name]), name)
