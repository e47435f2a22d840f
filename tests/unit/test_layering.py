"""The package's import graph keeps its layers: read every module's imports and check them.

Every module belongs to a component (CONTRIBUTING.md explains them) and may import only its
own component and the components :data:`ALLOWED` lists for it, which form no cycle; imports
inside functions and under ``TYPE_CHECKING`` count too. On top of that: no import cycles
between modules, no module reads another module's private (``_name``) attributes, and a
private module is imported only from inside the package that holds it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "posthog_otel"

# Components: a name and the modules it holds (a module belongs to the component with the
# longest matching prefix; the package root ``posthog_otel`` matches only itself).
COMPONENTS: dict[str, tuple[str, ...]] = {
    "foundation": (
        "posthog_otel.version",
        "posthog_otel._identity",
        "posthog_otel.config",
        "posthog_otel.genai_rules",
    ),
    "context": ("posthog_otel.context",),
    "errors": ("posthog_otel.errors",),
    "delivery": ("posthog_otel.delivery",),
    "client": (
        "posthog_otel.client",
        "posthog_otel.global_client",
        "posthog_otel._events",
        "posthog_otel._unsent",
        "posthog_otel._platform",
        "posthog_otel._options",
        "posthog_otel._compat",
        "posthog_otel.flags",
        "posthog_otel._flag_methods",
        "posthog_otel._exception_methods",
        "posthog_otel._person_methods",
        "posthog_otel._client_core",
        "posthog_otel.flag_functions",
        "posthog_otel._excepthooks",
        "posthog_otel._trace_methods",
    ),
    "tracing": ("posthog_otel.tracing",),
    "propagation": ("posthog_otel.propagation",),
    "spans": ("posthog_otel.spans",),
    "logs": ("posthog_otel.logs",),
    "otlp": ("posthog_otel.otlp",),
    "instrumentation": ("posthog_otel.instrumentor", "posthog_otel.instrumentors"),
    "api": (),  # the package root, posthog_otel/__init__.py
    "bridge": ("posthog_otel.bridge",),
    "sink": ("posthog_otel.sink",),
    "testing": ("posthog_otel.testing",),
    "demo": ("posthog_otel.demo",),
    "cli": ("posthog_otel.cli", "posthog_otel.__main__"),
    "aliases": ("posthog_otel.contexts", "posthog_otel.baggage", "posthog_otel.capture_server"),
}

_FOUNDATION = {"foundation"}
_CORE = _FOUNDATION | {
    "context",
    "errors",
    "delivery",
    "tracing",
    "client",
    "propagation",
    "spans",
    "logs",
}

# What each component may import besides itself: the layering rule, spelled out. Read it from
# the top: the foundation imports nothing of ours; the context layer only the vocabulary; the
# OTLP reader only the vocabulary; applications use the layers below them.
ALLOWED: dict[str, set[str]] = {
    "foundation": set(),
    "context": _FOUNDATION,
    "errors": _FOUNDATION,
    "delivery": _FOUNDATION | {"context", "otlp"},
    "tracing": _FOUNDATION | {"context", "delivery"},
    "client": _FOUNDATION | {"context", "errors", "delivery", "tracing"},
    "propagation": _FOUNDATION | {"context", "delivery"},
    "spans": _FOUNDATION | {"context", "errors", "delivery", "tracing", "client", "propagation"},
    "logs": _FOUNDATION | {"context", "delivery", "client", "spans"},
    "otlp": _FOUNDATION,
    "instrumentation": _CORE,
    "api": _CORE | {"instrumentation"},
    "bridge": _CORE | {"otlp"},
    "sink": _CORE | {"otlp"},
    "testing": _CORE | {"sink"},
    "demo": _CORE | {"instrumentation", "api", "sink"},
    "cli": _CORE | {"bridge", "sink", "demo"},
    "aliases": _CORE | {"testing"},
}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    names: tuple[str, ...]  # for "from X import a, b": ("a", "b")


def _modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    sources = [(ROOT / PACKAGE, PACKAGE), (ROOT / "instrumentors", f"{PACKAGE}.instrumentors")]
    for folder, dotted in sources:
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            name = ".".join([dotted, *parts])
            if name.startswith(f"{PACKAGE}.instrumentors.instrumentors"):
                continue
            found[name] = Module(name, path, is_package)
    return found


MODULES = _modules()


def _resolve(module: Module, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(module: Module) -> Iterator[Import]:
    tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield Import(module.name, alias.name, node.lineno, ())
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node.level, node.module)
            if target.split(".")[0] != PACKAGE:
                continue
            names = tuple(alias.name for alias in node.names)
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            rest = tuple(n for n in names if f"{target}.{n}" not in MODULES)
            for sub in submodules:
                yield Import(module.name, sub, node.lineno, ())
            if rest:
                yield Import(module.name, target, node.lineno, rest)


def _component(name: str) -> str | None:
    if name == PACKAGE:
        return "api"
    best, best_len = None, -1
    for component, prefixes in COMPONENTS.items():
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = component, len(prefix)
    return best


ALL_IMPORTS = [imp for module in MODULES.values() for imp in _imports(module)]


def _allowed(importer: str, imported: str) -> bool:
    source, target = _component(importer), _component(imported)
    return source == target or (source is not None and target in ALLOWED[source])


def test_every_module_belongs_to_a_component() -> None:
    assert len(MODULES) > 60
    assert [name for name in MODULES if _component(name) is None] == []


def test_every_import_is_allowed_by_the_layering_rule() -> None:
    broken = [
        f"{imp.importer} ({_component(imp.importer)}) imports {imp.imported} "
        f"({_component(imp.imported)}) at line {imp.line}"
        for imp in ALL_IMPORTS
        if imp.imported in MODULES and not _allowed(imp.importer, imp.imported)
    ]
    assert broken == []


def test_the_rule_itself_has_no_cycles() -> None:
    assert set(ALLOWED) == set(COMPONENTS)
    assert all(targets <= set(COMPONENTS) for targets in ALLOWED.values())
    edges = {source: set(targets) for source, targets in ALLOWED.items()}
    assert _cycles(edges) == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = {}
    for imp in ALL_IMPORTS:
        if imp.imported in MODULES and imp.imported != imp.importer:
            # a package's __init__ re-exporting its own modules is not a cycle
            parent = imp.importer if MODULES[imp.importer].is_package else None
            if parent is not None and imp.imported.startswith(parent + "."):
                continue
            edges.setdefault(imp.importer, set()).add(imp.imported)
    assert _cycles(edges) == []


def _owner(private_module: str) -> str:
    return private_module.rsplit(".", 1)[0]


def test_private_modules_are_imported_only_inside_their_package() -> None:
    outside = [
        f"{imp.importer} imports {imp.imported} at line {imp.line}"
        for imp in ALL_IMPORTS
        if imp.imported.rsplit(".", 1)[-1].startswith("_")
        and not imp.imported.rsplit(".", 1)[-1].startswith("__")
        and not (imp.importer + ".").startswith(_owner(imp.imported) + ".")
    ]
    assert outside == []


def test_no_module_reads_another_modules_private_names() -> None:
    readers: list[str] = []
    for imp in ALL_IMPORTS:
        for name in imp.names:
            if name.startswith("_") and not name.startswith("__") and imp.imported != imp.importer:
                readers.append(f"{imp.importer} imports {imp.imported}.{name} at line {imp.line}")
    for module in MODULES.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"))
        aliases = _module_aliases(module, tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                readers.append(
                    f"{module.name} reads {aliases[node.value.id]}.{node.attr} "
                    f"at line {node.lineno}"
                )
    assert readers == []


def _module_aliases(module: Module, tree: ast.AST) -> dict[str, str]:
    """Local names bound to other modules of the package (``from . import scope as s``)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node.level, node.module)
            for alias in node.names:
                full = f"{target}.{alias.name}"
                if full in MODULES and full != module.name:
                    aliases[alias.asname or alias.name] = full
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.asname:
                    aliases[alias.asname] = alias.name
    return aliases


def test_the_otlp_layer_needs_only_the_identity_vocabulary() -> None:
    """``otlp/`` (shared by the bridge and the sink) imports, as its ``__init__`` says, only
    ``posthog_otel._identity`` from the rest of the package, and besides the standard library
    only ``opentelemetry`` (the API)."""
    import sys

    otlp = [module for name, module in MODULES.items() if name.startswith(f"{PACKAGE}.otlp")]
    assert otlp
    outside = sorted(
        f"{imp.importer} -> {imp.imported}"
        for imp in ALL_IMPORTS
        if imp.importer.startswith(f"{PACKAGE}.otlp")
        and not imp.imported.startswith(f"{PACKAGE}.otlp")
        and imp.imported != f"{PACKAGE}._identity"
    )
    assert outside == []
    third_party = set()
    for module in otlp:
        for node in ast.walk(ast.parse(module.path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                tops = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = {node.module.split(".")[0]}
            else:
                continue
            third_party |= tops - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party <= {"opentelemetry"}


@pytest.mark.parametrize(
    ("importer", "imported", "allowed"),
    [
        ("posthog_otel.spans.processor", "posthog_otel.context.scope", True),
        ("posthog_otel.context.scope", "posthog_otel.spans.processor", False),
        ("posthog_otel.context.api", "posthog_otel.global_client", False),
        ("posthog_otel.otlp.decode", "posthog_otel.spans.mapping", False),
        ("posthog_otel.errors.live", "posthog_otel.context.scope", False),
        ("posthog_otel.sink.server", "posthog_otel.client", True),
        ("posthog_otel.sink.pages", "posthog_otel.bridge.app", False),
        ("posthog_otel.demo.services", "posthog_otel", True),
        ("posthog_otel.client", "posthog_otel", False),
    ],
)
def test_the_rule_itself_tells_allowed_from_forbidden(
    importer: str, imported: str, allowed: bool
) -> None:
    assert _allowed(importer, imported) is allowed


def test_a_new_module_is_placed_by_its_path() -> None:
    assert _component("posthog_otel.newthing") is None  # must be given a component
    assert _component("posthog_otel") == "api"
    assert _component("posthog_otel.instrumentors.flask") == "instrumentation"


def test_the_checks_see_violations() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
    fake = Module("posthog_otel.context.fake", ROOT / PACKAGE / "context" / "fake.py", False)
    assert _resolve(fake, 2, "spans.processor") == "posthog_otel.spans.processor"
    assert _resolve(fake, 1, None) == "posthog_otel.context"
