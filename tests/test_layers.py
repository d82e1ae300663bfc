"""Imports go one way: lower layers never import higher ones, the engine never imports Streamlit, and the pages
only lay out.

tl_core (the engine, layered below) < ui/ (Streamlit state and views) < app_pages/ and app.py (the pages). Read
from the source (every import statement, also those inside functions), so a cycle cannot hide behind a
function-level import.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "tl_core"
UI = ROOT / "ui"
PAGES = ROOT / "app_pages"
APP = ROOT / "app.py"
#: Lowest first. A module may import its own layer and the layers below it.
LAYERS = [
    {"tl_core.errors", "tl_core.config", "tl_core.events", "tl_core.device", "tl_core.randomness", "tl_core.assets",
     "tl_core.records", "tl_core.paths", "tl_core.lessons"},
    {"tl_core.inputs"},
    {"tl_core.models"},
    {"tl_core.engine"},
    {"tl_core.runs"},
    {"tl_core.presentation"},
    {"tl_core.cli", "tl_core.__main__"},
]
MAX_LINES = 500  # a module a newcomer reads in one sitting


def _layer(module: str) -> int:
    for i, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def _imports(path: Path):
    """Every module `path` imports; `from package import module` counts as importing the module itself."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if path.is_relative_to(CORE):
                assert node.level == 0, f"{path}: relative import; tl_core uses absolute imports"
            base = node.module or ""
            if node.level:  # `from . import state` in ui/ imports ui.state
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for a in node.names:  # `from tl_core.runs import comparison` imports the module tl_core.runs.comparison
                sub = f"{base}.{a.name}"
                yield sub if base.startswith(("tl_core", "ui")) and _is_module(sub) else base
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def _within(target: str, *packages: str) -> bool:
    return any(target == p or target.startswith(p + ".") for p in packages)


def _sources(*folders: Path) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py"))


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for path in _sources(CORE):
        me = _module_name(path)
        if me == "tl_core":
            continue
        for target in _imports(path):
            if target.startswith("tl_core.") and _layer(target) > _layer(me):
                wrong.append(f"{me} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_engine_never_imports_streamlit_and_only_presentation_draws():
    for path in _sources(CORE):
        me = _module_name(path)
        targets = set(_imports(path))
        assert not any(t == "streamlit" or t.startswith("streamlit.") for t in targets), me
        if not me.startswith("tl_core.presentation"):
            assert not any(t.startswith("plotly") for t in targets), f"{me} imports plotly"


def test_the_engine_never_imports_the_app():
    wrong = [f"{_module_name(p)} imports {t}" for p in _sources(CORE) for t in _imports(p)
             if _within(t, "ui", "app_pages", "app")]
    assert not wrong, "\n".join(wrong)


def test_ui_never_imports_the_pages():
    wrong = [f"{_module_name(p)} imports {t}" for p in _sources(UI) for t in _imports(p)
             if _within(t, "app_pages", "app")]
    assert not wrong, "\n".join(wrong)


def test_pages_never_touch_session_state():
    """The pages lay out; every value a session holds is read and written through ui/ functions."""
    wrong = []
    for path in [APP, *_sources(PAGES)]:
        for node in ast.walk(ast.parse(path.read_text())):
            name = (node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name)
                    else None)
            aliases = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            if name == "session_state" or any(a.endswith("session_state") for a in aliases):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not wrong, "st.session_state in the pages (use a ui/ function):\n" + "\n".join(wrong)


def test_the_checks_see_the_app():
    """The checks above read real imports: a page imports ui, ui imports tl_core and Streamlit."""
    assert any(_within(t, "ui") for t in _imports(PAGES / "model.py"))
    assert "ui.settings" in set(_imports(UI / "recipes_view.py"))
    assert "streamlit" in set(_imports(UI / "settings.py"))


def test_no_app_module_is_too_long_to_read():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in [APP, *_sources(UI, PAGES)]
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, "\n".join(long)


def test_no_import_cycles_between_modules():
    graph = {_module_name(p): {t for t in _imports(p) if t.startswith(("tl_core.", "ui."))}
             for p in _sources(CORE, UI)}
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


def _top_level_imports(path: Path) -> set[str]:
    """The first part of every module `path` imports (`bench.shapes` -> `bench`); relative imports as `.`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.add("." if node.level else (node.module or "").split(".")[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
    return found


def test_tests_and_benchmarks_never_import_each_other():
    """Both use the app through ui/ (ui/server_process.py starts a real server); a test runs a benchmark as a
    process and reads its --json output, so either side can change without breaking the other."""
    wrong = [f"{p.relative_to(ROOT)} imports bench" for p in _sources(ROOT / "tests")
             if "bench" in _top_level_imports(p)]
    wrong += [f"{p.relative_to(ROOT)} imports tests" for p in _sources(ROOT / "bench")
              if {"tests", "conftest"} & _top_level_imports(p)]
    assert not wrong, "\n".join(wrong)
