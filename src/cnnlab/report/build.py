"""Build the lab report from recorded runs: ``reports/lab/index.html`` (one self-contained file) and
``reports/lab/report.md``.

    cnnlab report [--runs-dir runs/] [--out reports/lab]

Every number comes from a run folder's summary or metrics; a part whose runs are missing says so.
"""

from __future__ import annotations

import datetime as dt
import platform
from pathlib import Path

from cnnlab.experiments.configs import ReportConfig
from cnnlab.paths import runs_root
from cnnlab.report import exercise1, exercise2, exercise3, questions
from cnnlab.report.document import Document, Heading, Paragraph, Table, write
from cnnlab.report.runs import load_runs
from cnnlab.runs import environment


def provenance(doc: Document, runs_dir: Path) -> None:
    env = environment()
    devices = sorted({r.summary.get("device", "?") for ex in ("cifar", "food", "notmnist") for r in load_runs(runs_dir, ex)})
    doc.add(Heading("Provenance", anchor="provenance"))
    doc.add(Table([
        {"Item": "built", "Value": dt.datetime.now().strftime("%Y-%m-%d %H:%M")},
        {"Item": "machine", "Value": f"{platform.node()} ({platform.machine()}, {platform.system()})"},
        {"Item": "devices used by the runs", "Value": ", ".join(devices) or "-"},
        {"Item": "python / torch / torchvision / lightning",
         "Value": f"{env['python']} / {env['torch']} / {env['torchvision']} / {env['lightning']}"},
        {"Item": "runs folder", "Value": str(runs_dir)},
    ]))


def build(runs_dir: str | Path | None = None, out_dir: str | Path = "reports/lab") -> tuple[Path, Path]:
    runs_dir = runs_root(runs_dir)
    out_dir = Path(out_dir)
    figures = out_dir / "generated"
    doc = Document("cnnlab: lab report")
    doc.add(Paragraph("Non-sequential CNNs on CIFAR-10, transfer learning on Food-101 and autoencoders on notMNIST, "
                      "built by `cnnlab report` from the runs recorded in this folder."))
    provenance(doc, runs_dir)
    facts = {"ex1": exercise1.section(doc, runs_dir, figures),
             "ex2": exercise2.section(doc, runs_dir, figures),
             "ex3": exercise3.section(doc, runs_dir, figures)}
    questions.section(doc, facts)
    return write(doc, out_dir)


def cmd_report(cfg: ReportConfig) -> int:
    page, md = build(cfg.runs_dir or None, cfg.out)
    print(f"report: {page.resolve()}\n        {md.resolve()}")
    return 0
