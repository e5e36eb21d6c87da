"""The package's layers: each sub-package imports only from the layers below it (and itself), so
the folder layout is the architecture. A new upward or sideways import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "simulator"
# Lowest first. Packages on one line are siblings: neither imports the other.
LAYERS = [
    {"errors", "config", "conf"},  # what everything may use (conf/: the shipped Hydra tree, no code)
    {"trajectory"},  # the log schema, writer and reader
    {"stats", "models"},  # statistics with no knowledge of runs; the language models
    {"context"},  # run context, persona, memory, prompts
    {"world"},  # tools, workspace, sandbox: what the persona acts on
    {"instruments"},  # one module per instrument, and the judges
    {"measure"},  # a run's figures from its events
    {"loop", "read"},  # running a run; reading run folders
    {"cli"},  # the console scripts
]
LAYER = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def part_of(module: str) -> str | None:
    """The layer unit a dotted module belongs to: simulator.read.views -> read."""
    parts = module.split(".")
    return parts[1] if parts[0] == "simulator" and len(parts) > 1 else None


def imports(path: Path) -> list[tuple[int, str]]:
    """Every simulator module a file imports (at the top, in functions, or only for typing)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, f"{node.module}.{a.name}" if node.module == "simulator" else node.module)
                      for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in found if m.startswith("simulator.")]


def wrong_way() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative == Path("__init__.py"):
            continue  # the package's face re-exports from everywhere
        here = relative.parts[0].removesuffix(".py")
        for line, module in imports(path):
            there = part_of(module)
            if there != here and LAYER[there] >= LAYER[here]:
                bad.append(f"simulator/{relative}:{line} imports {module} ({here} may not import {there})")
    return bad


def test_every_module_belongs_to_a_layer():
    units = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert units - {"__init__"} <= set(LAYER), f"not in LAYERS: {sorted(units - {'__init__'} - set(LAYER))}"


def test_no_import_runs_up_or_sideways_across_the_layers():
    assert wrong_way() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    upward = tmp_path / "simulator" / "stats"
    upward.mkdir(parents=True)
    (upward / "bad.py").write_text("def f():\n    from simulator.read.views import read_run\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "simulator")
    assert wrong_way() == ["simulator/stats/bad.py:2 imports simulator.read.views (stats may not import read)"]
