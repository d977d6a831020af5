"""Report section for Exercise 2: the transfer-learning comparison, the best configuration's confusion
matrix and per-class accuracy, curves, and what transfer bought against training from scratch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.viz.comparisons import chosen_on, food_label, food_row
from cnnlab.viz.curves import plot_curves
from cnnlab.report.document import Document, Figure, Heading, Missing, Paragraph, Table
from cnnlab.report.runs import add_diverged, Run, load_runs

HOW = "Run `cnnlab food compare --preset quick` (or `cnnlab lab`)."


label = food_label


def comparison_rows(runs: list[Run]) -> list[dict[str, Any]]:
    return [food_row(r.summary) for r in runs]


def facts_of(runs: list[Run]) -> dict[str, Any]:
    best = max(runs, key=lambda r: (r.summary["test_acc"], r.summary["top5"]))
    by_strategy: dict[str, Run] = {}
    for r in runs:  # the best run of each strategy
        kind = r.summary["strategy"]
        if kind not in by_strategy or r.summary["test_acc"] > by_strategy[kind].summary["test_acc"]:
            by_strategy[kind] = r
    facts: dict[str, Any] = {"best": label(best.summary), "best_test": best.summary["test_acc"],
                             "best_top5": best.summary["top5"], "num_classes": best.summary.get("num_classes")}
    for kind, r in by_strategy.items():
        facts[f"{kind}_test"] = r.summary["test_acc"]
        facts[f"{kind}_time"] = r.summary["wall_time_s"]
        facts[f"{kind}_trainable"] = r.summary["trainable_params"]
        facts[f"{kind}_label"] = label(r.summary)
    return facts


def transfer_sentence(facts: dict[str, Any]) -> str:
    if "scratch_test" not in facts:
        return "No `scratch` run was recorded, so what transfer bought cannot be measured here."
    pretrained = max((facts[k] for k in ("frozen_test", "finetune_test") if k in facts), default=None)
    if pretrained is None:
        return "Only a `scratch` run was recorded."
    return (f"Transfer bought {100 * (pretrained - facts['scratch_test']):.1f} points of test accuracy: "
            f"{100 * pretrained:.1f}% with ImageNet weights against {100 * facts['scratch_test']:.1f}% for the "
            f"same architecture trained from random weights on the same images.")


def section(doc: Document, runs_dir: Path, figures_dir: Path) -> dict[str, Any]:
    doc.add(Heading("Exercise 2: transfer learning on Food-101", anchor="exercise-2"))
    every = load_runs(runs_dir, "food")
    add_diverged(doc, every)
    runs = [r for r in every if "train_acc" in r.summary and "strategy" in r.summary]
    if not runs:
        doc.add(Missing("no finished Food-101 runs in " + str(runs_dir / "food"), HOW))
        return {}
    facts = facts_of(runs)
    n = facts["num_classes"]
    doc.add(Paragraph(f"ImageNet-pretrained backbones with each backbone's own preprocessing (timm data config), "
                      f"on the first {n} Food-101 classes. `frozen` trains only the head on cached features; "
                      f"`finetune` then unfreezes the last blocks at a lower learning rate; `scratch` trains the "
                      f"same architecture from random weights."))
    doc.add(Table(comparison_rows(runs), caption="Backbones, heads and strategies (test split, best checkpoint, "
                                                 f"{chosen_on([r.summary for r in runs])})"))
    doc.add(Paragraph(f"Best configuration: **{facts['best']}**, {100 * facts['best_test']:.1f}% test accuracy "
                      f"(top-5 {100 * facts['best_top5']:.1f}%). " + transfer_sentence(facts)))
    best = max(runs, key=lambda r: (r.summary["test_acc"], r.summary["top5"]))
    confusion = best.path / best.summary.get("confusion_png", "confusion.png")
    if confusion.is_file():
        doc.add(Figure(confusion, f"Confusion matrix of the best configuration ({facts['best']}), test split"))
    per_class = best.summary.get("per_class_acc") or {}
    if per_class:
        doc.add(Table([{"Class": k, "Test accuracy %": f"{100 * v:.1f}"} for k, v in
                       sorted(per_class.items(), key=lambda kv: kv[1])],
                      caption="Per-class test accuracy of the best configuration, hardest first"))
    curves = plot_curves({label(r.summary): r.path for r in runs}, figures_dir / "food_curves.png",
                         title="Food-101: accuracy and loss per epoch")
    if curves:
        doc.add(Figure(curves, "Training curves of every configuration"))
    return facts
