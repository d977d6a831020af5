"""Reading recorded runs for the report: summaries grouped by entry (seeds together), numbers only
ever taken from run folders."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """Every seed of one configuration (runs named ``<entry>-s<seed>``)."""

    name: str
    runs: list[Run] = field(default_factory=list)

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


def group_by_entry(runs: list[Run]) -> list[Entry]:
    entries: dict[str, Entry] = {}
    for run in runs:
        key = SEED_SUFFIX.sub("", run.name)
        entries.setdefault(key, Entry(key)).runs.append(run)
    return list(entries.values())


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
