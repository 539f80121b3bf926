"""The package's layers, checked from its imports: an `ast` walk of every module, deferred and type-only imports too.

Each layer may import the layers listed for it and nothing else of ours; the contract layer, and every layer below the
ASGI app, knows no web framework; the serving layer reaches the app only through what `scoring_runtime.app`
exports; nothing inside the package imports the package root. docs/architecture.md draws the same table.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "scoring_runtime"
BASE = frozenset({"_version", "errors", "config", "config_values", "settings", "settings_models", "glibc", "cpus"})
# Our layers: what each may import of ours (its own modules always).
ALLOWED: dict[str, frozenset[str]] = {
    # A tool for the machine that builds images (`scoring-runtime package`): only the command line reaches it.
    "packaging": BASE,
    # A tool for the machine that sizes a deployment (`scoring-runtime profile`): it starts the server as a process,
    # and only the command line reaches it.
    "profiling": BASE,
    "_version": frozenset(),
    "errors": frozenset(),
    "config_values": frozenset(),
    "settings": frozenset({"config_values", "settings_models"}),
    "settings_models": frozenset({"config_values"}),
    "glibc": frozenset(),
    "cpus": frozenset(),
    "config": frozenset({"errors", "settings", "config_values"}),
    "contract": BASE,
    "azureml": BASE | {"contract"},
    "models": BASE | {"contract"},
    "auth": BASE,
    "observability": BASE,
    "app": BASE | {"contract", "azureml", "auth", "observability", "models"},
    "serving": BASE | {"app", "auth", "observability"},
    "cli": BASE | {"serving", "packaging", "profiling"},
    "__main__": frozenset({"cli"}),
}
# Layers whose imports of another layer must go through that layer's package root (its documented surface).
THROUGH_ROOT = {"serving": frozenset({"app"}), "cli": frozenset({"serving", "packaging", "profiling"})}
WEB = frozenset({"starlette", "uvicorn", "uvicorn_worker", "gunicorn", "httptools", "uvloop", "h11", "wsproto"})
SERVERS = frozenset({"uvicorn", "uvicorn_worker", "gunicorn", "httptools", "uvloop", "h11", "wsproto"})
FORBIDDEN: dict[str, frozenset[str]] = {
    "errors": WEB | {"prometheus_client"},
    "config_values": WEB | {"prometheus_client"},
    "settings": WEB | {"prometheus_client"},
    "settings_models": WEB | {"prometheus_client"},
    "glibc": WEB | {"prometheus_client"},
    "cpus": WEB | {"prometheus_client"},
    "config": WEB | {"prometheus_client"},
    "contract": WEB | {"prometheus_client"},
    # AMLResponse is a Starlette response (what run() returns is sent as it is): the one framework name allowed.
    "azureml": SERVERS | {"prometheus_client"},
    "auth": WEB | {"prometheus_client"},
    "models": WEB | {"prometheus_client"},
    "observability": WEB,
    "app": SERVERS,
    "cli": WEB | {"prometheus_client"},
    "packaging": WEB | {"prometheus_client"},
    "profiling": WEB | {"prometheus_client"},
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # what it imports, dotted
    names: tuple[str, ...]  # for `from target import names`
    line: int


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def module_name(path: Path, package: Path) -> str:
    relative = path.relative_to(package.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> Iterator[Import]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([target] if target else [])])
            names = tuple(alias.name for alias in node.names)
            if target == "scoring_runtime" and all(
                (PACKAGE / name).exists() or (PACKAGE / f"{name}.py").exists() for name in names
            ):
                # `from scoring_runtime import config_values`: an import of the submodule, not of the root.
                for name in names:
                    yield Import(module, f"scoring_runtime.{name}", (), node.lineno)
            else:
                yield Import(module, target, names, node.lineno)


def violations(found: Import) -> list[str]:
    """What is wrong with one import, by the rules above."""
    where = f"{found.module}:{found.line} imports {found.target}"
    layer = layer_of(found.module)
    top = found.target.split(".")[0]
    if top != "scoring_runtime":
        return [f"{where}: {layer} must not use {top}"] if top in FORBIDDEN.get(layer, frozenset()) else []
    if found.module == "scoring_runtime":
        return []  # the package root re-exports the public API
    target_layer = layer_of(found.target)
    if not target_layer:
        return [f"{where}: nothing inside the package imports its root"]
    if target_layer == layer:
        return []
    if target_layer not in ALLOWED.get(layer, frozenset()):
        return [f"{where}: {layer} may not import {target_layer}"]
    if target_layer in THROUGH_ROOT.get(layer, frozenset()):
        surface = f"scoring_runtime.{target_layer}"
        if found.target != surface:
            return [f"{where}: {layer} reaches {target_layer} only through {surface}"]
        exported = set(importlib.import_module(surface).__all__)
        hidden = sorted(set(found.names) - exported)
        if hidden:
            return [f"{where}: {', '.join(hidden)} not in {surface}.__all__"]
    return []


def package_imports(package: Path) -> Iterator[Import]:
    for path in sorted(package.rglob("*.py")):
        yield from imports_of(path.read_text(), module_name(path, package), path.name == "__init__.py")


def test_every_module_belongs_to_a_layer() -> None:
    layers = {layer_of(module_name(path, PACKAGE)) for path in PACKAGE.rglob("*.py")} - {""}
    assert layers <= ALLOWED.keys(), layers - ALLOWED.keys()


def test_the_layers_import_only_what_they_may() -> None:
    found = list(package_imports(PACKAGE))
    assert len(found) > 200  # the walk sees the package
    problems = [problem for entry in found for problem in violations(entry)]
    assert problems == []


SAMPLES = {
    "contract/bad.py": "from starlette.requests import Request\n",
    "contract/worse.py": "def f():\n    from scoring_runtime.app.scoring import Scorer\n",
    "auth/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import prometheus_client\n",
    "app/bad.py": "import uvicorn\n",
    "serving/bad.py": "from scoring_runtime.app.application import ScoringApp\n",
    "serving/hidden.py": "from scoring_runtime.app import Scorer\n",
    "serving/up.py": "from scoring_runtime.contract.script import UserScript\n",
    "azureml/root.py": "from scoring_runtime import __version__\n",
    "observability/relative.py": "from ..app import ScoringApp\n",
    "serving/tool.py": "def f():\n    from scoring_runtime.packaging import main\n",
    "cli/inner.py": "from scoring_runtime.packaging.command import plan\n",
    "profiling/up.py": "from scoring_runtime.serving import run\n",
    "cli/profiling.py": "from scoring_runtime.profiling.run import profile\n",
}


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_the_check_catches_each_kind_of_violation(sample: str) -> None:
    module = "scoring_runtime." + sample.removesuffix(".py").replace("/", ".")
    problems = [p for entry in imports_of(SAMPLES[sample], module, False) for p in violations(entry)]
    assert len(problems) == 1, problems


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module to the modules of ours it imports at load time (not inside functions, not for type checking only)."""
    modules = {module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        nodes: list[ast.stmt] = list(tree.body)
        found: set[str] = set()
        while nodes:
            node = nodes.pop()
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.If, ast.Try)):
                nodes.extend(ast.iter_child_nodes(node))  # type: ignore[arg-type]
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                snippet = ast.unparse(node)
                for entry in imports_of(snippet, module, path.name == "__init__.py"):
                    # `from package import module` imports the module; `from module import name`, the module.
                    submodules = {f"{entry.target}.{name}" for name in entry.names} & modules.keys()
                    found |= (submodules or {entry.target} & modules.keys()) - {module}
        graph[module] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, each once, as the list of modules around it."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycle = path[path.index(target) :]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    found.append(cycle)
            elif len(path) < 30:
                walk(target, [*path, target])

    for module in sorted(graph):
        walk(module, [module])
    return found


def test_there_is_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert "scoring_runtime.contract.script" in graph["scoring_runtime.contract.loading"]  # the graph sees imports
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_over_about_300_lines() -> None:
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {path: size for path, size in sizes.items() if size > 300} == {}
