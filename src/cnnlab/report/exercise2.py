"""Report section for Exercise 2: the transfer-learning comparison, the best configuration's confusion
matrix and per-class accuracy, curves, and what transfer bought against training from scratch."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from cnnlab.stats import difference
from cnnlab.viz.comparisons import budget_text, chosen_on, cost, food_choice, food_label, food_row
from cnnlab.viz.curves import plot_curves
from cnnlab.report.document import Document, Figure, Heading, Missing, Paragraph, Table
from cnnlab.report.runs import add_diverged, group_by_entry, Run, load_runs

HOW = "Run `cnnlab food compare --preset quick` (or `cnnlab lab`)."


label = food_label


def comparison_rows(runs: list[Run]) -> list[dict[str, Any]]:
    return [food_row(r.summary) for r in runs]


def transfer_pairs(runs: list[Run]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pretrained run, scratch run) pairs that share backbone, head, classes and training images: the
    only like-for-like measure of what the ImageNet weights bought."""
    def what(s: dict[str, Any]) -> tuple:
        return s["backbone"], s["head"], s.get("num_classes"), s.get("train_images"), s.get("data_fingerprint")

    scratch = [r.summary for r in runs if r.summary["strategy"] == "scratch"]
    return [(r.summary, z) for z in scratch for r in runs
            if r.summary["strategy"] != "scratch" and what(r.summary) == what(z)]


def pair_sentence(pretrained: dict[str, Any], scratch: dict[str, Any]) -> str:
    d = difference([pretrained["test_acc"]], [scratch["test_acc"]], pretrained.get("test_images"),
                   scratch.get("test_images"))
    verdict = d.verdict("the ImageNet weights bought accuracy", "the ImageNet weights cost accuracy")
    return (f"{label(pretrained)}: {100 * pretrained['test_acc']:.1f}% ({budget_text(pretrained)}) against "
            f"{100 * scratch['test_acc']:.1f}% from random weights ({budget_text(scratch)}): {verdict} "
            f"(pretrained minus scratch: {d.text()}).")


def facts_of(runs: list[Run], swept: list[Run] = ()) -> dict[str, Any]:
    """What the report says of the comparison ``runs``: the best configuration (chosen on val), the
    transfer pairs (also among the data-size sweep's ``swept`` runs, whose scratch point pairs with its
    pretrained ones), and frozen against fine-tuned."""
    best, sentence = food_choice([r.summary for r in runs])
    facts: dict[str, Any] = {"best_sentence": sentence, "num_classes": runs[0].summary.get("num_classes")}
    if best is not None:
        facts.update(best=label(best), best_test=best["test_acc"], best_top5=best["top5"], best_summary=best)
    facts["pairs"] = transfer_pairs([*runs, *swept])
    # Frozen against fine-tuned on the same backbone, head and data (question e).
    by_what: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in runs:
        s = r.summary
        key = (s["backbone"], s["head"], s.get("num_classes"), s.get("train_images"), s.get("data_fingerprint"),
               s.get("seed"))
        by_what.setdefault(key, {})[s["strategy"]] = s
    facts["frozen_vs_finetune"] = [(v["frozen"], v["finetune"]) for v in by_what.values()
                                   if "frozen" in v and "finetune" in v]
    return facts


def transfer_sentence(facts: dict[str, Any]) -> str:
    pairs = facts.get("pairs") or []
    if not pairs:
        return ("No pretrained run shares its backbone, head and data with a `scratch` run, so what transfer "
                "bought is not measured like for like here.")
    return "What the ImageNet weights bought, like for like: " + " ".join(pair_sentence(p, z) for p, z in pairs)


def sweep_members(runs_dir: Path) -> set[str]:
    """The run folders that ``cnnlab food sweep`` recorded as its points (none without a sweep)."""
    try:
        return set(json.loads((Path(runs_dir) / "food" / "sweep.json").read_text())["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def sweep_points(swept: list[Run]) -> list[dict[str, Any]]:
    """Per training size, the frozen and fine-tuned runs and the difference (fine-tuned minus frozen)."""
    by_size: dict[int, dict[str, dict[str, Any]]] = {}
    for r in swept:
        s = r.summary
        by_size.setdefault(round(s["train_images"] / s["num_classes"]), {})[s["strategy"]] = s
    points = []
    for size, runs in sorted(by_size.items()):
        if "frozen" in runs and "finetune" in runs:
            f, t = runs["frozen"], runs["finetune"]
            points.append({"per_class": size, "frozen": f, "finetune": t,
                           "difference": difference([t["test_acc"]], [f["test_acc"]], t.get("test_images"),
                                                    f.get("test_images"))})
    return points


def sweep_sentence(points: list[dict[str, Any]]) -> str:
    """The sweep in words, each size's verdict following its interval."""
    parts = [f"{p['per_class']} image{'s' if p['per_class'] != 1 else ''} per class: frozen {100 * p['frozen']['test_acc']:.1f}%, fine-tuned "
             f"{100 * p['finetune']['test_acc']:.1f}%: "
             + p["difference"].verdict("fine-tuning ahead", "freezing ahead") + f" ({p['difference'].text()})"
             for p in points]
    return "; ".join(parts) + "." if parts else ""


def sweep_section(doc: Document, runs_dir: Path, swept: list[Run]) -> list[dict[str, Any]]:
    doc.add(Heading("How the training-set size bears on freezing", level=3))
    table = Path(runs_dir) / "food" / "sweep.md"
    if not swept or not table.is_file():
        doc.add(Missing("no data-size sweep", "Run `cnnlab food sweep --preset sweep` (or `cnnlab lab`)"))
        return []
    with table.with_suffix(".csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    doc.add(Table(rows, caption=table.read_text().split("\n", 1)[0]))  # the caption is the table's first line
    if table.with_suffix(".png").is_file():
        doc.add(Figure(table.with_suffix(".png"), "Test accuracy against training images per class (log axis), "
                                                  "95% intervals"))
    points = sweep_points(swept)
    if points:
        doc.add(Paragraph(sweep_sentence(points)))
    return points


def section(doc: Document, runs_dir: Path, figures_dir: Path) -> dict[str, Any]:
    doc.add(Heading("Exercise 2: transfer learning on Food-101", anchor="exercise-2"))
    every = load_runs(runs_dir, "food")
    add_diverged(doc, every)
    runs = [r for r in every if "train_acc" in r.summary and "strategy" in r.summary]
    runs = [r for e in group_by_entry(runs) for r in e.runs]  # one run per config and seed: the newest
    members = sweep_members(runs_dir)
    swept = [r for r in runs if r.name in members]
    runs = [r for r in runs if r.name not in members]
    if not runs:
        doc.add(Missing("no finished Food-101 runs in " + str(runs_dir / "food"), HOW))
        return {}
    facts = facts_of(runs, swept)
    n = facts["num_classes"]
    doc.add(Paragraph(f"ImageNet-pretrained backbones with each backbone's own preprocessing (timm data config), "
                      f"on the first {n} Food-101 classes. `frozen` trains only the head on cached features; "
                      f"`finetune` then unfreezes the last blocks at a lower learning rate; `scratch` trains the "
                      f"same architecture from random weights."))
    doc.add(Table(comparison_rows(runs), caption="Backbones, heads and strategies (test split, best checkpoint, "
                                                 f"{chosen_on([r.summary for r in runs])})"))
    doc.add(Paragraph(facts["best_sentence"] + " " + transfer_sentence(facts)))
    if "best" not in facts:
        return facts
    best = next(r for r in runs if r.summary is facts["best_summary"])
    confusion = best.path / best.summary.get("confusion_png", "confusion.png")
    if confusion.is_file():
        doc.add(Figure(confusion, f"Confusion matrix of the best configuration ({facts['best']}), test split"))
    per_class = best.summary.get("per_class_acc") or {}
    if per_class:
        doc.add(Table([{"Class": k, "Test accuracy %": f"{100 * v:.1f}"} for k, v in
                       sorted(per_class.items(), key=lambda kv: kv[1])],
                      caption="Per-class test accuracy of the best configuration, hardest first"))
    facts["sweep"] = sweep_section(doc, runs_dir, swept)
    curves = plot_curves({label(r.summary): r.path for r in runs}, figures_dir / "food_curves.png",
                         title="Food-101: accuracy and loss per epoch (dashed: train, running over augmented "
                               "batches; dotted: val; solid: test)")
    if curves:
        doc.add(Figure(curves, "Training curves of every configuration"))
    return facts
