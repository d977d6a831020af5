"""The import contract: layers import one way, and the two leaves (data, models) and viz import none of
each other. Every ``import cnnlab...`` counts, also those inside functions (they run too).

    base (errors, files, paths, registry, config, metrics, stats, runs: the run-folder contract)
      <- data | models | viz   (independent leaves)
      <- train <- experiments <- report <- lab, cache_command, cli (top)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"
BASE = {"cnnlab", "cnnlab.errors", "cnnlab.files", "cnnlab.paths", "cnnlab.registry", "cnnlab.config", "cnnlab.metrics", "cnnlab.stats",
        "cnnlab.runs"}
RANK = {"data": 1, "models": 1, "viz": 1, "train": 2, "experiments": 3, "report": 4, "lab": 5, "cli": 5, "__main__": 5,
        "cache_command": 5}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> tuple[int, str]:
    """(rank, group) of a cnnlab module; base modules are rank 0."""
    if module in BASE:
        return 0, "base"
    group = module.split(".")[1]
    if group not in RANK:
        raise AssertionError(f"{module} is in no layer: add it to tests/test_layers.py")
    return RANK[group], group


def imports_of(path: Path) -> set[str]:
    """Every cnnlab module that ``path`` imports (``from cnnlab import x`` counts as cnnlab.x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cnnlab"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cnnlab":
            if node.module == "cnnlab":  # a submodule, or a name of the package itself (__version__)
                found |= {f"cnnlab.{a.name}" if (SRC / a.name).is_dir() or (SRC / f"{a.name}.py").is_file()
                          else "cnnlab" for a in node.names}
            else:
                found.add(node.module)
    return found


MODULES = sorted(SRC.rglob("*.py"))


def violations(modules=MODULES) -> list[str]:
    out = []
    for path in modules:
        me = module_name(path)
        my_rank, my_group = layer(me)
        for target in sorted(imports_of(path)):
            rank, group = layer(target)
            upward = rank > my_rank
            sideways = rank == my_rank and rank == 1 and group != my_group
            if upward or sideways:
                out.append(f"{me} ({my_group}) imports {target} ({group})")
    return out


def test_every_module_imports_only_downward():
    assert violations() == []


def test_the_check_catches_upward_and_sideways_imports(tmp_path, monkeypatch):
    fake = tmp_path / "cnnlab"
    (fake / "data").mkdir(parents=True)
    (fake / "models").mkdir()
    (fake / "data" / "up.py").write_text("def f():\n    from cnnlab.train.engine import fit\n")
    (fake / "data" / "side.py").write_text("from cnnlab import models\nimport cnnlab.models.layers\n")
    (fake / "models" / "fine.py").write_text("from cnnlab.errors import CnnlabError\nfrom cnnlab.models import x\n")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    found = violations(sorted(fake.rglob("*.py")))
    assert found == ["cnnlab.data.side (data) imports cnnlab.models (models)",
                     "cnnlab.data.side (data) imports cnnlab.models.layers (models)",
                     "cnnlab.data.up (data) imports cnnlab.train.engine (train)"]


@pytest.mark.parametrize("name", ["cnnlab.experiments.common", "cnnlab.report.build"])
def test_layers_are_known(name):
    assert layer(name)[0] > 0
