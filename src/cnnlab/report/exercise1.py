"""Report section for Exercise 1: Table 1, hyper-parameters, graphs, curves and the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.viz.curves import plot_curves
from cnnlab.report.document import Document, Figure, Heading, Missing, Paragraph, Preformatted, Table
from cnnlab.viz.comparisons import (TEST_ON_TEST, TEST_ON_VAL, chosen_on, kept_last, shared_recipe, table1_row, table1_verdict,
                                    honest_choice, test_on_val)
from cnnlab.stats import difference, mean_std
from cnnlab.report.runs import add_diverged, Entry, group_by_entry, load_runs

HOW = "Run `cnnlab cifar compare --preset quick` (or `cnnlab lab`)."


def table1_rows(entries: list[Entry]) -> list[dict[str, Any]]:
    """Table 1 as the lab asks for it, with the honest test column beside the lab's (the other columns
    are in the hyper-parameter table)."""
    shown = ("Model", "Architecture", "Callback", "Acc. train %", TEST_ON_TEST, TEST_ON_VAL)
    rows = [table1_row(e.name, [r.summary for r in e.runs]) for e in entries]
    return [{k: row[k] for k in shown} for row in rows]


def chosen_epoch(summary: dict[str, Any]) -> str:
    """The epoch a run's checkpoint was chosen at, or "last kept" for a run that scored nothing while training."""
    return "last kept" if kept_last(summary) else str(summary["best_epoch"])


def hyperparameter_rows(entries: list[Entry]) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        s = e.first.summary
        hp = s.get("hyperparameters", {})
        rows.append({"Model": e.name, "Params": f"{s['params']:,}", "Epochs": s["epochs"],
                     "Best epoch": ", ".join(chosen_epoch(r.summary) for r in e.runs),
                     "Optimizer": hp.get("optimizer"), "LR": hp.get("lr"), "Batch": hp.get("batch_size"),
                     "Weight decay": hp.get("weight_decay"), "Schedule": hp.get("schedule"),
                     "Label smoothing": hp.get("label_smoothing"), "Augmentation":
                         f"crop pad {hp.get('crop_padding')}, flip {hp.get('flip')}",
                     "Precision": hp.get("precision"), "Train / test images": f"{s.get('train_images')} / {s.get('test_images')}",
                     "Seeds": len(e.runs), "Time / run": f"{mean_std(e.values('wall_time_s'))[0]:.0f} s"})
    return rows


def verdict(entries: list[Entry]) -> tuple[str, dict[str, Any]]:
    """The verdict (``table1_verdict``) and the facts the review answers use."""
    text, facts = table1_verdict([(e.name, [r.summary for r in e.runs]) for e in entries])
    facts["test_by_entry"] = facts.get("by_entry", {})
    facts["verdict"] = text
    facts["train_by_entry"] = {e.name: mean_std(e.values("train_acc"))[0] for e in entries}
    facts["params_by_entry"] = {e.name: e.first.summary["params"] for e in entries}
    facts["time_by_entry"] = {e.name: mean_std(e.values("wall_time_s"))[0] for e in entries}
    facts["seeds_by_entry"] = {e.name: len(e.runs) for e in entries}
    facts["recipe_by_entry"] = {e.name: {k: v for k, v in (e.first.summary.get("hyperparameters") or {}).items()
                                         if k != "precision_reason"} for e in entries}
    pick = "val" if facts.get("chosen_on") == "val" else "test"
    facts["values_by_entry"] = {
        e.name: ([float(test_on_val(r.summary)) if pick == "val" else float(r.summary["test_acc"])
                  for r in e.runs], e.first.summary.get("test_images")) for e in entries}
    facts["monitors_by_entry"] = {e.name: [r.summary.get("monitor") for r in e.runs] for e in entries}
    facts["chosen_on_text"] = chosen_on_text(pick, [r.summary for e in entries for r in e.runs])
    return text, facts


def chosen_on_text(pick: str, summaries: list[dict[str, Any]]) -> str:
    """How the epochs behind the verdict's figures were chosen, in a few words."""
    if pick != "val":
        return "epochs chosen on test, so both figures are optimistic"
    return honest_choice(summaries).replace("best epoch", "epochs")


def skip_connection_sentence(facts: dict[str, Any]) -> str:
    """What the skip connections bought in this lab: ``residual`` against ``sequential``, the two entries of
    Table 1 that share one recipe, with the interval of the difference ("" when either is missing)."""
    values = facts.get("values_by_entry", {})
    if "residual" not in values or "sequential" not in values:
        return ""
    (res, n_res), (seq, n_seq) = values["residual"], values["sequential"]
    d = difference(res, seq, n_res, n_seq)
    params = facts.get("params_by_entry", {})
    verdict = d.verdict("the residual network is ahead", "the residual network is behind")
    monitors = facts.get("monitors_by_entry", {})
    pair_choice = (chosen_on_text("val" if facts.get("chosen_on") == "val" else "test",
                                  [{"monitor": m} for name in ("residual", "sequential") for m in monitors.get(name, [])])
                   if monitors else facts.get("chosen_on_text", ""))
    recipes = facts.get("recipe_by_entry", {})
    same = recipes.get("residual") == recipes.get("sequential")
    how = ("with the same recipe" if same else
           "with different recipes (see the hyper-parameter table), so not like for like")
    return (f"Skip connections, {how}: residual reached {100 * sum(res) / len(res):.1f}% against "
            f"{100 * sum(seq) / len(seq):.1f}% for the sequential baseline ({params.get('residual', 0):,} against "
            f"{params.get('sequential', 0):,} parameters): {verdict} (residual minus sequential: {d.text()}; "
            f"{pair_choice}).")


def section(doc: Document, runs_dir: Path, figures_dir: Path) -> dict[str, Any]:
    doc.add(Heading("Exercise 1: non-sequential CNNs on CIFAR-10", anchor="exercise-1"))
    every = load_runs(runs_dir, "cifar")
    add_diverged(doc, every)
    runs = [r for r in every if "train_acc" in r.summary]
    if not runs:
        doc.add(Missing("no finished CIFAR-10 runs in " + str(runs_dir / "cifar"), HOW))
        return {}
    entries = group_by_entry(runs)
    reruns = [name for e in entries for name in e.rerun]
    doc.add(Paragraph("Each model was trained with a checkpoint callback that keeps the weights of the "
                      "epoch with the best monitored accuracy. The lab sheet asks to monitor test accuracy: "
                      "the test accuracy of the epoch test chose is optimistic (the test set picked it), so "
                      "beside it stands the test accuracy of the epoch that a validation split held out of "
                      "train chose (test scored once). Train accuracy is the chosen checkpoint's, on the "
                      "training images without augmentation. One run carries its 95% Wilson interval on the "
                      "test images; several seeds show mean ± std."
                      + (" Runs that monitor nothing (a recipe whose schedule and weight averaging end at the "
                         "net it is for) train on all the training images and keep their last epoch; their "
                         "test accuracy, scored once, stands in the honest column."
                         if any(kept_last(r.summary) for e in entries for r in e.runs) else "")))
    doc.add(Table(table1_rows(entries), caption="Table 1: architectures, callbacks and accuracies"
                  + (" (mean ± std over seeds)" if any(len(e.runs) > 1 for e in entries) else "")
                  + f"; {chosen_on([r.summary for e in entries for r in e.runs])}"))
    doc.add(Paragraph(shared_recipe([r.summary for e in entries for r in e.runs])))
    if reruns:
        doc.add(Paragraph("Re-runs of a configuration and seed already shown (the newest run of each seed is "
                          "shown; seeds are never averaged with their own re-runs): " + ", ".join(reruns) + "."))
    doc.add(Table(hyperparameter_rows(entries), caption="Hyper-parameters of each run"))
    text, facts = verdict(entries)
    doc.add(Paragraph(text + (" " + skip_connection_sentence(facts) if skip_connection_sentence(facts) else "")))
    curves = plot_curves({e.name: e.first.path for e in entries}, figures_dir / "cifar_curves.png",
                         title="CIFAR-10: accuracy and loss per epoch (dashed: train, running over augmented batches; dotted: val; solid: test)")
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
