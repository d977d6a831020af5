"""Report section for Exercise 1: Table 1, hyper-parameters, graphs, curves and the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.viz.curves import plot_curves
from cnnlab.report.document import Document, Figure, Heading, Missing, Paragraph, Preformatted, Table
from cnnlab.viz.comparisons import chosen_on, table1_row
from cnnlab.viz.tables import mean_std
from cnnlab.report.runs import add_diverged, Entry, group_by_entry, load_runs

HOW = "Run `cnnlab cifar compare --preset quick` (or `cnnlab lab`)."


def table1_rows(entries: list[Entry]) -> list[dict[str, Any]]:
    """Table 1 as the lab asks for it (the other columns are in the hyper-parameter table)."""
    shown = ("Model", "Architecture", "Callback", "Acc. train %", "Acc. test %")
    rows = [table1_row(e.name, [r.summary for r in e.runs]) for e in entries]
    return [{k: row[k] for k in shown} for row in rows]


def hyperparameter_rows(entries: list[Entry]) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        s = e.first.summary
        hp = s.get("hyperparameters", {})
        rows.append({"Model": e.name, "Params": f"{s['params']:,}", "Epochs": s["epochs"],
                     "Best epoch": ", ".join(str(r.summary["best_epoch"]) for r in e.runs),
                     "Optimizer": hp.get("optimizer"), "LR": hp.get("lr"), "Batch": hp.get("batch_size"),
                     "Weight decay": hp.get("weight_decay"), "Schedule": hp.get("schedule"),
                     "Label smoothing": hp.get("label_smoothing"), "Augmentation":
                         f"crop pad {hp.get('crop_padding')}, flip {hp.get('flip')}",
                     "Precision": hp.get("precision"), "Train / test images": f"{s.get('train_images')} / {s.get('test_images')}",
                     "Seeds": len(e.runs), "Time / run": f"{mean_std(e.values('wall_time_s'))[0]:.0f} s"})
    return rows


def verdict(entries: list[Entry]) -> tuple[str, dict[str, Any]]:
    ranked = sorted(entries, key=lambda e: mean_std(e.values("test_acc"))[0], reverse=True)
    best, facts = ranked[0], {}
    best_mean, best_std = mean_std(best.values("test_acc"))
    facts.update(best=best.name, best_test=best_mean, best_std=best_std, seeds=len(best.runs))
    text = f"**{best.name}** has the best test accuracy, {100 * best_mean:.1f}%"
    if len(best.runs) > 1:
        text += f" (± {100 * best_std:.1f} over {len(best.runs)} seeds)"
    if len(ranked) > 1:
        second = ranked[1]
        gap = best_mean - mean_std(second.values("test_acc"))[0]
        text += f", {100 * gap:.1f} points ahead of {second.name}"
        if len(best.runs) > 1 and gap < 2 * best_std:
            text += " (within two standard deviations of the seed spread, so not a clear win)"
    baseline = next((e for e in entries if e.name.startswith("sequential")), None)
    if baseline is not None and baseline is not best:
        base = mean_std(baseline.values("test_acc"))[0]
        facts["sequential_test"] = base
        text += f"; the sequential baseline reaches {100 * base:.1f}%"
    facts["test_by_entry"] = {e.name: mean_std(e.values("test_acc"))[0] for e in entries}
    facts["train_by_entry"] = {e.name: mean_std(e.values("train_acc"))[0] for e in entries}
    facts["params_by_entry"] = {e.name: e.first.summary["params"] for e in entries}
    facts["time_by_entry"] = {e.name: mean_std(e.values("wall_time_s"))[0] for e in entries}
    return text + ".", facts


def section(doc: Document, runs_dir: Path, figures_dir: Path) -> dict[str, Any]:
    doc.add(Heading("Exercise 1: non-sequential CNNs on CIFAR-10", anchor="exercise-1"))
    every = load_runs(runs_dir, "cifar")
    add_diverged(doc, every)
    runs = [r for r in every if "train_acc" in r.summary]
    if not runs:
        doc.add(Missing("no finished CIFAR-10 runs in " + str(runs_dir / "cifar"), HOW))
        return {}
    entries = group_by_entry(runs)
    doc.add(Paragraph("Each model was trained with a checkpoint callback that keeps the weights of the "
                      "epoch with the best monitored accuracy; train and test accuracy are those of that "
                      "checkpoint, re-evaluated on the full splits without augmentation."))
    doc.add(Table(table1_rows(entries), caption="Table 1: architectures, callbacks and accuracies"
                  + (" (mean ± std over seeds)" if any(len(e.runs) > 1 for e in entries) else "")
                  + f"; {chosen_on([r.summary for e in entries for r in e.runs])}"))
    doc.add(Table(hyperparameter_rows(entries), caption="Hyper-parameters of each run"))
    text, facts = verdict(entries)
    doc.add(Paragraph(text))
    curves = plot_curves({e.name: e.first.path for e in entries}, figures_dir / "cifar_curves.png",
                         title="CIFAR-10: accuracy and loss per epoch (dashed: train, solid: monitored split)")
    if curves:
        doc.add(Figure(curves, "Training curves of every architecture (first seed)"))
    doc.add(Heading("Architecture graphs", level=3))
    for e in entries:
        graph = next((p for p in (e.first.path / "architecture.svg", e.first.path / "architecture.png") if p.is_file()), None)
        if graph:
            doc.add(Figure(graph, f"{e.name}: architecture graph with tensor shapes"))
        else:
            doc.add(Missing(f"graph of {e.name}", "Install graphviz (`dot`) and re-run `cnnlab cifar graph`"))
    best_entry = next(x for x in entries if x.name == facts["best"])
    summary = best_entry.first.path / "model_summary.txt"
    if summary.is_file():
        doc.add(Preformatted(summary.read_text(), caption=f"Layer summary of the best model, {best_entry.name}"))
    return facts
