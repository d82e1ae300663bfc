"""Imports go one way: lower layers never import higher ones, and the engine never imports Streamlit.

Read from the source (every import statement, also those inside functions), so a cycle cannot hide behind a
function-level import.
"""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "tl_core"
#: Lowest first. A module may import its own layer and the layers below it.
LAYERS = [
    {"tl_core.errors", "tl_core.config", "tl_core.events", "tl_core.device", "tl_core.randomness", "tl_core.assets",
     "tl_core.records", "tl_core.paths"},
    {"tl_core.inputs"},
    {"tl_core.models"},
    {"tl_core.engine"},
    {"tl_core.runs"},
    {"tl_core.presentation"},
    {"tl_core.cli", "tl_core.__main__"},
]


def _layer(module: str) -> int:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; tl_core uses absolute imports"
            base = node.module or ""
            for a in node.names:  # `from tl_core.runs import comparison` imports the module tl_core.runs.comparison
                sub = f"{base}.{a.name}"
                is_module = (CORE.parent / Path(*sub.split("."))).with_suffix(".py").exists() or \
                    (CORE.parent / Path(*sub.split("."))).is_dir()
                yield sub if base.startswith("tl_core") and is_module else base
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for path in sorted(CORE.rglob("*.py")):
        me = _module_name(path)
        if me == "tl_core":
            continue
        for target in _imports(path):
            if target.startswith("tl_core.") and _layer(target) > _layer(me):
                wrong.append(f"{me} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_engine_never_imports_streamlit_and_only_presentation_draws():
    for path in sorted(CORE.rglob("*.py")):
        me = _module_name(path)
        targets = set(_imports(path))
        assert not any(t == "streamlit" or t.startswith("streamlit.") for t in targets), me
        if not me.startswith("tl_core.presentation"):
            assert not any(t.startswith("plotly") for t in targets), f"{me} imports plotly"


def test_no_import_cycles_between_modules():
    graph = {_module_name(p): {t for t in _imports(p) if t.startswith("tl_core.")} for p in CORE.rglob("*.py")}
    modules = set(graph)

    def visit(node, stack, done):
        if node in stack:
            raise AssertionError(" -> ".join(stack[stack.index(node):] + [node]))
        if node in done or node not in modules:
            return
        for nxt in graph[node]:
            visit(nxt, stack + [node], done)
        done.add(node)

    done = set()
    for m in sorted(modules):
        visit(m, [], done)
