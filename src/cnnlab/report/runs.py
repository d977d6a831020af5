"""Reading recorded runs for the report: summaries grouped by configuration (the seeds of one config
together), numbers only ever taken from run folders."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.config import read_yaml
from cnnlab.errors import CnnlabError

SEED_SUFFIX = re.compile(r"-s\d+(-\d+)?$")


@dataclass
class Run:
    path: Path
    summary: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Entry:
    """Every seed of one configuration: runs whose recorded config (``config.yaml``) and data fingerprint
    are equal but for the seed and ``NOT_RESULTS``, one run per seed (the newest); ``rerun`` names the
    older runs of a seed it left out."""

    name: str
    runs: list[Run] = field(default_factory=list)
    rerun: list[str] = field(default_factory=list)

    @property
    def first(self) -> Run:
        return self.runs[0]

    def values(self, key: str) -> list[float]:
        return [float(r.summary[key]) for r in self.runs if r.summary.get(key) is not None]


def newest(runs: list[Run]) -> Run:
    """The run finished last (its summary written last): the one a section shows when several qualify."""
    return max(runs, key=lambda r: (r.path / "summary.json").stat().st_mtime_ns)


def load_runs(runs_dir: Path, exercise: str) -> list[Run]:
    base = Path(runs_dir) / exercise
    runs = []
    for summary_path in sorted(base.glob("*/summary.json")) if base.is_dir() else []:
        try:
            runs.append(Run(summary_path.parent, json.loads(summary_path.read_text())))
        except (OSError, json.JSONDecodeError):
            continue  # an unreadable summary is reported as a missing run, not guessed at
    return runs


# Config keys that do not change a run's result (where it is written, how it is shown), and the seed:
# runs equal in every other key are seeds of one configuration.
NOT_RESULTS = ("run.name", "run.runs_dir", "run.progress", "run.resume", "run.force", "run.logger", "run.seed",
               "data.data_dir", "data.data_root", "data.eval_batch_size")


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key != "model":  # ``model`` holds an architecture's options: one value
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def recorded_settings(run: Run) -> dict[str, Any]:
    """What ``run`` is: its config.yaml flattened to dotted keys, less ``NOT_RESULTS``, plus the data
    fingerprint its summary recorded. A folder without a readable config.yaml (not written by a cnnlab
    command) is known by its name alone, less the seed suffix."""
    try:
        tree = read_yaml(run.path / "config.yaml")
    except CnnlabError:
        return {"name without config": SEED_SUFFIX.sub("", run.name)}
    flat = {k: v for k, v in _flat(tree).items() if k not in NOT_RESULTS and k not in ("seed", "name", "runs_dir")}
    return {**flat, "data_fingerprint": run.summary.get("data_fingerprint")}


def _seed(run: Run) -> Any:
    """The run's seed as its summary recorded it (as its name says, for summaries without one)."""
    if run.summary.get("seed") is not None:
        return run.summary["seed"]
    found = re.search(r"-s(\d+)(-\d+)?$", run.name)
    return int(found.group(1)) if found else run.name


def group_by_entry(runs: list[Run]) -> list[Entry]:
    """Runs grouped by what they are (``recorded_settings``), one run per seed. Each entry is named by its
    first run less the seed suffix; two configurations that would share a name are told apart by the
    settings in which they differ."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(repr(sorted(recorded_settings(run).items(), key=lambda kv: kv[0])), []).append(run)
    entries = []
    for members in groups.values():
        by_seed: dict[Any, list[Run]] = {}
        for run in members:
            by_seed.setdefault(_seed(run), []).append(run)
        kept = [newest(same) for same in by_seed.values()]
        older = sorted(r.name for same in by_seed.values() for r in same if r not in kept)
        kept.sort(key=lambda r: (str(_seed(r)), r.name))
        entries.append(Entry(SEED_SUFFIX.sub("", kept[0].name), kept, older))
    return _distinct_names(entries)


def _distinct_names(entries: list[Entry]) -> list[Entry]:
    by_name: dict[str, list[Entry]] = {}
    for e in entries:
        by_name.setdefault(e.name, []).append(e)
    for same in by_name.values():
        if len(same) < 2:
            continue
        settings = [recorded_settings(e.first) for e in same]
        differing = sorted({k for s in settings for k in s if any(s.get(k) != t.get(k) for t in settings)})
        for e, s in zip(same, settings):
            shown = [f"{k.split('.')[-1]}={s.get(k)}" for k in differing if k != "data_fingerprint"][:3]
            if "data_fingerprint" in differing:
                shown.append(f"data {str(s.get('data_fingerprint'))[:6]}")
            e.name = f"{e.name} ({', '.join(shown)})"
    return entries


def diverged_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per run whose training diverged (NaN or infinite loss): they have no result."""
    return [{"Run": r.name, "Diverged in epoch": r.summary.get("diverged_epoch", "?"),
             "Step": r.summary.get("diverged_step", "?"), "LR then": r.summary.get("diverged_lr", "?"),
             "Finished epochs": r.summary.get("epochs", 0)}
            for r in runs if r.summary.get("status") == "diverged"]


def add_diverged(doc, runs: list[Run]) -> None:
    """Show the diverged runs of a section as such, never as results."""
    from cnnlab.report.document import Table

    rows = diverged_rows(runs)
    if rows:
        doc.add(Table(rows, caption="Runs that diverged (the loss became NaN or infinite): no result, left out "
                                    "of every table and comparison below"))
