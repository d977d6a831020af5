"""The rows of the comparison tables, written once for the commands that train (``cifar compare``,
``food compare``) and for the report that reads their runs. Each takes run summaries (``summary.json``)
and returns one row of display strings; a diverged run shows "diverged", never a number. A test accuracy
of one run carries its 95% Wilson interval on the test images; over seeds, mean ± sample std."""

from __future__ import annotations

from typing import Any

from cnnlab.runs import is_diverged
from cnnlab.stats import difference, mean_std, wilson_interval
from cnnlab.viz.tables import fmt_acc, fmt_pct

TEST_ON_TEST = "Acc. test % (epoch chosen on test: optimistic)"
TEST_ON_VAL = "Acc. test % (epoch chosen on val, or the last)"


def kept_last(s: dict[str, Any]) -> bool:
    """Whether a run monitored nothing and so kept its last epoch (CIFAR's ``monitor: none``)."""
    return s.get("monitor") == "none"


def _val_or_last(summaries: list[dict[str, Any]], on_val: str, last: str, both: str) -> str:
    """``on_val`` when every run chose its epoch on validation, ``last`` when every run kept its last, else ``both``."""
    kinds = {kept_last(s) for s in summaries}
    return on_val if kinds == {False} else last if kinds == {True} else both


def chosen_on(summaries: list[dict[str, Any]]) -> str:
    """Which split chose the checkpoints behind these test accuracies, in words a reader cannot miss:
    a test accuracy whose epoch the test set chose is optimistic."""
    on_test = [s for s in summaries if str(s.get("monitor", "test_acc")).startswith("test")]
    if len(on_test) == len(summaries):
        return "best epoch chosen on test accuracy: an optimistic test figure"
    if on_test:
        others = _val_or_last([s for s in summaries if s not in on_test], "on validation", "the last epoch kept",
                              "on validation or the last epoch kept")
        return f"best epoch chosen on test accuracy for some runs (optimistic), {others} for others"
    return f"{honest_choice(summaries)}; test scored once"


def honest_choice(summaries: list[dict[str, Any]]) -> str:
    """How the epochs behind the honest test figures were chosen: on validation, or none chosen (runs that
    monitor nothing keep their last epoch), or both."""
    return _val_or_last(summaries, "best epoch chosen on validation", "last epoch kept, none chosen",
                        "best epoch chosen on validation, or the last epoch kept")


def duration(seconds: float) -> str:
    """Seconds below two minutes, minutes above."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def test_on_val(s: dict[str, Any]) -> float | None:
    """The test accuracy of the epoch that validation chose, or of the last epoch when the run chose none
    (None when a run that chose on test held out no val)."""
    if kept_last(s):
        return s.get("test_acc")
    if s.get("val_chosen"):
        return s["val_chosen"].get("test_acc")
    return s.get("test_acc") if str(s.get("monitor", "")).startswith("val") else None  # runs of earlier versions


def test_on_test(s: dict[str, Any]) -> float | None:
    """The test accuracy of the epoch that test chose (None when validation chose it)."""
    return s["test_acc"] if str(s.get("monitor", "test_acc")).startswith("test") else None


def _acc_cell(values: list[float | None], n: int | None) -> str:
    return "-" if not values or any(v is None for v in values) else fmt_acc(values, n)  # type: ignore[arg-type]


def table1_row(name: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Table 1's row of one entry: train accuracy (a clean pass of the best checkpoint), the test accuracy
    of the epoch test chose (optimistic, as the lab sheet asks) and of the epoch val chose (test scored
    once), as mean ± std over its seeds (one seed: with its Wilson interval); "-" where the run has none."""
    diverged = [s for s in summaries if is_diverged(s)]
    if diverged:  # a diverged seed has no result: the entry shows that, never a number
        first = diverged[0]
        return {"Model": name, "Architecture": first.get("architecture", name), "Callback": "",
                "Acc. train %": "diverged", TEST_ON_TEST: "diverged", TEST_ON_VAL: "diverged",
                "Params": f"{first['params']:,}",
                "Epochs": f"diverged in epoch {first.get('diverged_epoch', '?')}",
                "Optimizer, LR, batch": "", "Time": duration(first["wall_time_s"])}
    first = summaries[0]
    hp = first["hyperparameters"]
    return {
        "Model": name,
        "Architecture": first["architecture"],
        "Callback": first["callback"],
        "Acc. train %": fmt_pct([s["train_acc"] for s in summaries]),
        TEST_ON_TEST: _acc_cell([test_on_test(s) for s in summaries], first.get("test_images")),
        TEST_ON_VAL: _acc_cell([test_on_val(s) for s in summaries], first.get("test_images")),
        "Params": f"{first['params']:,}",
        "Epochs": (f"{first['epochs']} ({'last kept' if kept_last(first) else 'best ' + str(first['best_epoch'])})"
                   if len(summaries) == 1 else str(first["epochs"])),
        "Optimizer, LR, batch": f"{hp['optimizer']}, {hp['lr']:g}, {hp['batch_size']}",
        "Time": duration(sum(s["wall_time_s"] for s in summaries) / len(summaries)),
    }


def _recipe_facts(s: dict[str, Any]) -> dict[str, Any]:
    hp = {k: v for k, v in s.get("hyperparameters", {}).items() if k != "precision_reason"}
    return {"epochs": s.get("epochs"), "training images": s.get("train_images"), "val images": s.get("val_images"),
            "test images": s.get("test_images"), **hp}


def _recipe_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def shared_recipe(summaries: list[dict[str, Any]]) -> str:
    """The training recipe that every finished run in ``summaries`` shares (epochs, images per split and the
    hyper-parameters ``summary.json`` records: optimiser, lr, batch, weight decay, schedule, label smoothing,
    crops, flips, precision), as one line for beneath a table: its rows then differ by architecture, not by
    how they were trained. Recorded settings that differ between runs are named as differing, never left
    out. Diverged runs (which record no finished epochs) are left out of the comparison."""
    facts = [_recipe_facts(s) for s in summaries if not is_diverged(s)]
    if not facts:
        return "Recipe: no run finished."
    keys = list(dict.fromkeys(k for f in facts for k in f))
    same = [k for k in keys if all(f.get(k) == facts[0].get(k) for f in facts) and facts[0].get(k) is not None]
    differ = [k for k in keys if not all(f.get(k) == facts[0].get(k) for f in facts)]
    text = "Recipe shared by every row: " + (", ".join(f"{k.replace('_', ' ')} {_recipe_value(facts[0][k])}"
                                                        for k in same) or "none")
    return text + (f"; differs between rows: {', '.join(k.replace('_', ' ') for k in differ)}." if differ else ".")


def ranking(candidates: list[tuple[str, list[float], int | None]], what: str) -> tuple[str, dict[str, Any]]:
    """A sentence naming the highest of ``candidates`` (name, accuracies over seeds, images scored) by
    ``what``, and how sure that is: its lead over the runner-up with the 95% interval of the difference
    (see ``stats.difference``), worded "within noise" when that interval covers 0. Returns the sentence
    and the facts it was built from."""
    ranked = sorted(candidates, key=lambda c: mean_std(c[1])[0], reverse=True)
    name, values, n = ranked[0]
    mean, std = mean_std(values)
    text = f"**{name}** has the highest {what}, {100 * mean:.1f}%"
    if len(values) > 1:
        text += f" (± {100 * std:.1f} over {len(values)} seeds)"
    facts: dict[str, Any] = {"best": name, "best_value": mean, "within_noise": False}
    if len(ranked) > 1:
        second, values2, n2 = ranked[1]
        d = difference(values, values2, n, n2)
        facts.update(second=second, second_value=mean_std(values2)[0], difference=d, within_noise=d.within_noise)
        if not d.known:
            text += f", {d.text()} over {second}"
        elif d.within_noise:
            text += f", but its lead over {second} is within noise ({d.text()})"
        else:
            text += f", ahead of {second} by {d.text()}"
    return text + ".", facts


def table1_verdict(entries: list[tuple[str, list[dict[str, Any]]]]) -> tuple[str, dict[str, Any]]:
    """Exercise 1's verdict from Table 1's entries (name, run summaries over seeds): the best
    architecture by the test accuracy of the epoch validation chose when every entry has it, else by the
    test accuracy of the epoch test chose (said to be optimistic); its lead, and the sequential baseline's
    distance, each with the interval of the difference ("within noise" when it covers 0)."""
    results = [(name, [s for s in runs if not is_diverged(s)]) for name, runs in entries]
    results = [(name, runs) for name, runs in results if runs]
    if not results:
        return "Every run diverged: there is no result to compare.", {}
    honest = all(test_on_val(s) is not None for _, runs in results for s in runs)
    pick = test_on_val if honest else (lambda s: s["test_acc"])
    what = (f"test accuracy ({honest_choice([s for _, runs in results for s in runs]).replace('best ', '')})" if honest
            else "test accuracy (epoch chosen on test: an optimistic figure)")
    candidates = [(name, [pick(s) for s in runs], runs[0].get("test_images")) for name, runs in results]
    text, facts = ranking(candidates, what)
    facts["chosen_on"] = "val" if honest else "test"
    facts["by_entry"] = {name: mean_std(values)[0] for name, values, _ in candidates}
    base = next((c for c in candidates if c[0].startswith("sequential")), None)
    best = next(c for c in candidates if c[0] == facts["best"])
    if base is not None and base is not best:
        d = difference(best[1], base[1], best[2], base[2])
        facts["baseline"], facts["baseline_value"], facts["baseline_difference"] = base[0], mean_std(base[1])[0], d
        text += (f" The sequential baseline reaches {100 * facts['baseline_value']:.1f}%; difference: "
                 + d.verdict(f"{facts['best']} is ahead", f"{facts['best']} is behind") + f" ({d.text()}).")
    return text, facts


def strategy_text(s: dict[str, Any]) -> str:
    """"finetune (last 2)", "frozen", ...: the transfer strategy of a Food-101 run."""
    return s["strategy"] + (f" (last {s['unfreeze']})" if s.get("unfreeze") else "")


def food_label(s: dict[str, Any]) -> str:
    """"efficientnet_lite0 + linear, frozen": a Food-101 run in a few words."""
    return f"{s['backbone']} + {s['head']}, {strategy_text(s)}"


def cost(s: dict[str, Any]) -> dict[str, Any]:
    """A run's budget: epochs, seconds (feature extraction counted, also when the features came from the
    cache: its seconds are kept with it) and training images passed through the backbone (an extraction pass counts once, a head epoch on
    cached features not at all)."""
    seconds = float(s["wall_time_s"])
    features = s.get("features") or {}
    extraction = float(features.get("seconds") or 0.0)  # recorded with the cache, also when reused
    seconds += extraction
    passes = 0
    for phase in s.get("phases") or [{"phase": s.get("strategy", ""), "epochs": s["epochs"]}]:
        passes += 1 if "cached features" in str(phase.get("phase")) else int(phase.get("epochs", 0))
    note = "" if extraction or not features else " (features from a cache of an earlier version: extraction not counted)"
    return {"epochs": s["epochs"], "seconds": seconds, "images": passes * int(s.get("train_images") or 0), "note": note}


def budget_text(s: dict[str, Any]) -> str:
    c = cost(s)
    images = f", {c['images']:,} images through the backbone" if c["images"] else ""
    epochs = f"{c['epochs']} epoch" + ("s" if c["epochs"] != 1 else "")
    return f"{epochs}, {duration(c['seconds'])}{images}{c['note']}"


def sweep_row(s: dict[str, Any]) -> dict[str, Any]:
    """The data-size sweep's row of one Food-101 run: its training images per class, strategy, test
    accuracy with its interval, and its budget."""
    per_class = round(int(s.get("train_images") or 0) / max(int(s.get("num_classes") or 1), 1))
    if is_diverged(s):
        return {"Images per class": per_class, "Strategy": strategy_text(s), "Acc. test %": "diverged",
                "Budget": f"diverged in epoch {s.get('diverged_epoch', '?')}"}
    return {"Images per class": per_class, "Strategy": strategy_text(s),
            "Acc. test %": fmt_acc([s["test_acc"]], s.get("test_images")), "Budget": budget_text(s)}


def food_row(s: dict[str, Any]) -> dict[str, Any]:
    """The transfer-learning comparison's row of one Food-101 run."""
    if is_diverged(s):  # no result to show: say so in every result column
        return {"Backbone": s["backbone"], "Head": s["head"], "Strategy": strategy_text(s), "Trainable params": "",
                "Epochs": f"diverged in epoch {s.get('diverged_epoch', '?')}", "Time": duration(s["wall_time_s"]),
                "Acc. train %": "diverged", "Acc. test %": "diverged", "Top-5 %": "diverged"}
    return {
        "Backbone": s["backbone"], "Head": s["head"], "Strategy": strategy_text(s),
        "Trainable params": f"{s['trainable_params']:,}",
        "Epochs": f"{s['epochs']} (best {s['best_epoch']})",
        "Time": duration(s["wall_time_s"]),
        "Acc. train %": f"{100 * s['train_acc']:.1f}" + ("" if s.get("train_acc_source", "").startswith("best")
                                                         else " (logged, augmented)"),
        "Acc. test %": fmt_acc([s["test_acc"]], s.get("test_images")),
        "Top-5 %": f"{100 * s['top5']:.1f}",
    }


def food_choice(summaries: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The best Food-101 configuration and the sentence that names it. It is chosen on validation
    accuracy when every run held out val (its test accuracy then reported once), else on test accuracy,
    said to be optimistic; its lead over the runner-up on the choosing split carries the interval of the
    difference ("within noise" when it covers 0)."""
    results = [s for s in summaries if not is_diverged(s)]
    if not results:
        return None, "Every run diverged: there is no result to compare."
    on_val = all(str(s.get("monitor", "")).startswith("val") for s in results)
    split = "val" if on_val else "test"

    def chosen_by(s: dict[str, Any]) -> float:
        return s["best_monitored"] if on_val else s["test_acc"]

    labels = [food_label(s) for s in results]
    names = [label + (f" [{s.get('name', i)}]" if labels.count(label) > 1 else "")  # runs of one config apart
             for i, (label, s) in enumerate(zip(labels, results))]
    candidates = [(name, [chosen_by(s)], s.get(f"{split}_images")) for name, s in zip(names, results)]
    text, facts = ranking(candidates, f"{split} accuracy" + ("" if on_val else " (chosen on test: optimistic)"))
    best = results[names.index(facts["best"])]
    low, high = wilson_interval(best["test_acc"], best["test_images"]) if best.get("test_images") else (None, None)
    text = "Best configuration, chosen on " + ("validation" if on_val else "test") + " accuracy: " + text
    text += (f" Its test accuracy: {100 * best['test_acc']:.1f}%"
             + (f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None else "")
             + f" (top-5 {100 * best['top5']:.1f}%) on {best['num_classes']} classes.")
    return best, text
