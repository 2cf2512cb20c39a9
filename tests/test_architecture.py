"""The package's shape: no import circle, imports only toward earlier stages of the flow, small modules."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "modernbert_glue"
# The flow (README, Layout): a module imports only modules of its own or an earlier stage. `cli` is the entry
# point and may import anything, as the Python API (api) may; errors, locks, outputs, ownership and provenance
# serve every stage and import no staged module. The package's __init__ hands out api's functions on first use.
STAGES = [
    ["cli", "cli_main", "cli_options", "cli_protocol", "api"],
    ["config", "recipes", "run_paths"],
    ["tasks", "data", "readers", "labels", "hub"],
    ["inputs", "packing", "segments"],
    ["models", "model_overrides", "inference_settings", "device"],
    ["evaluation", "modelcard"],
    ["training", "inference", "bench", "submission"],
    ["report"],
]
SHARED = {"errors", "locks", "outputs", "ownership", "provenance", "__init__"}
MAX_LINES = 350


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path) -> set[str]:
    """Package modules imported anywhere in the file (function-level imports included)."""
    package = name.split(".")[:-1]  # a package's __init__ too: "bench.__init__" is in package bench
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] if node.level > 1 else package
            target = [*base, *(node.module.split(".") if node.module else [])]
            for alias in node.names:  # `from . import x` imports module x
                candidate = ".".join([*target, alias.name])
                found.add(candidate if candidate in modules() else ".".join(target))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("modernbert_glue."):
            found.add(node.module.removeprefix("modernbert_glue."))
    return {f for f in found if f in modules() or f + ".__init__" in modules()}


def stage(name: str) -> int | None:
    top = name.split(".")[0]
    if top in SHARED:
        return None
    return next(i for i, names in enumerate(STAGES) if top in names)


def test_every_module_has_a_stage_and_imports_never_go_back_up_the_flow():
    wrong = []
    for name, path in modules().items():
        mine = stage(name)
        for target in imports(name, path):
            theirs = stage(target)
            if mine is None and theirs is not None and (name, target) != ("__init__", "api"):
                wrong.append(f"{name} (shared) imports {target}")
            elif mine not in (None, 0) and theirs is not None and theirs > mine:
                wrong.append(f"{name} (stage {mine}) imports {target} (stage {theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    graph = {name: {t.removesuffix(".__init__") for t in imports(name, path)} for name, path in modules().items()}
    graph = {name.removesuffix(".__init__"): deps for name, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            raise AssertionError("import circle: " + " -> ".join([*trail[trail.index(node):], node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if dep != node:
                visit(dep, [*trail, node])
        state[node] = 2

    for name in sorted(graph):
        visit(name, [])


def test_modules_stay_small():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long
