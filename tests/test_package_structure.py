"""The package's import graph: no cycle, and the flow engine below the estimators."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).parents[1] / "skgfe"

# Modules of the flow engine: torch and NumPy only, no scikit-learn, no estimator.
ENGINE = (
    "_flows",
    "_solvers",
    "_adjoint",
    "_losses",
    "_logdet",
    "_uncertainty",
    "_geometry",
    "_geodesics",
)
ESTIMATORS = ("_base", "_differentiable", "_gradient_flow", "_autoencoder", "_one_bit")


def _module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path, modules=()):
    """Every module imported anywhere in ``path`` (function bodies included).

    ``from package import name`` counts as an import of the submodule
    ``package.name`` when ``name`` is one of ``modules``, else of ``package``.
    """
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                found.add(submodule if submodule in modules else module)
    return found


@pytest.fixture(scope="module")
def graph():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path, modules) if m in modules and m != name}
        for name, path in modules.items()
        if name != "skgfe.__main__"  # the entry point; nothing imports it
    }


def test_import_graph_has_no_cycle(graph):
    done, visiting = set(), []

    def visit(name):
        if name in visiting:
            cycle = visiting[visiting.index(name) :] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        visiting.append(name)
        for target in graph.get(name, ()):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


@pytest.mark.parametrize("engine", ENGINE)
def test_engine_knows_nothing_of_scikit_learn_or_the_estimators(engine):
    paths = (
        [PACKAGE / f"{engine}.py"]
        if (PACKAGE / f"{engine}.py").exists()
        else list((PACKAGE / engine).rglob("*.py"))
    )
    assert paths
    for path in paths:
        imports = _imports(path)
        assert not any(m == "sklearn" or m.startswith("sklearn.") for m in imports), (
            path
        )
        assert not any(m.rpartition(".")[2] in ESTIMATORS for m in imports), path
