"""The rows of the comparison tables, written once for the commands that train (``cifar compare``,
``food compare``) and for the report that reads their runs. Each takes run summaries (``summary.json``)
and returns one row of display strings; a diverged run shows "diverged", never a number. A test accuracy
of one run carries its 95% Wilson interval on the test images; over seeds, mean ± sample std."""

from __future__ import annotations

from typing import Any

from cnnlab.runs import is_diverged
from cnnlab.viz.tables import fmt_acc, fmt_pct


def chosen_on(summaries: list[dict[str, Any]]) -> str:
    """Which split chose the checkpoints behind these test accuracies, in words a reader cannot miss:
    a test accuracy whose epoch the test set chose is optimistic."""
    splits = sorted({str(s.get("monitor", "test_acc")).split("_")[0] for s in summaries})
    if splits == ["test"]:
        return "best epoch chosen on test accuracy: an optimistic test figure"
    if "test" in splits:
        return "best epoch chosen on test accuracy for some runs (optimistic), on validation for others"
    return "best epoch chosen on validation; test scored once"


def duration(seconds: float) -> str:
    """Seconds below two minutes, minutes above."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def table1_row(name: str, summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Table 1's row of one entry: accuracies as mean ± std over its seeds (one seed: the value)."""
    diverged = [s for s in summaries if is_diverged(s)]
    if diverged:  # a diverged seed has no result: the entry shows that, never a number
        first = diverged[0]
        return {"Model": name, "Architecture": first.get("architecture", name), "Callback": "",
                "Acc. train %": "diverged", "Acc. test %": "diverged", "Params": f"{first['params']:,}",
                "Epochs": f"diverged in epoch {first.get('diverged_epoch', '?')}",
                "Optimizer, LR, batch": "", "Time": duration(first["wall_time_s"])}
    first = summaries[0]
    hp = first["hyperparameters"]
    return {
        "Model": name,
        "Architecture": first["architecture"],
        "Callback": first["callback"],
        "Acc. train %": fmt_pct([s["train_acc"] for s in summaries]),
        "Acc. test %": fmt_acc([s["test_acc"] for s in summaries], first.get("test_images")),
        "Params": f"{first['params']:,}",
        "Epochs": f"{first['epochs']} (best {first['best_epoch']})" if len(summaries) == 1 else str(first["epochs"]),
        "Optimizer, LR, batch": f"{hp['optimizer']}, {hp['lr']:g}, {hp['batch_size']}",
        "Time": duration(sum(s["wall_time_s"] for s in summaries) / len(summaries)),
    }


def strategy_text(s: dict[str, Any]) -> str:
    """"finetune (last 2)", "frozen", ...: the transfer strategy of a Food-101 run."""
    return s["strategy"] + (f" (last {s['unfreeze']})" if s.get("unfreeze") else "")


def food_label(s: dict[str, Any]) -> str:
    """"efficientnet_lite0 + linear, frozen": a Food-101 run in a few words."""
    return f"{s['backbone']} + {s['head']}, {strategy_text(s)}"


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
        "Acc. train %": f"{100 * s['train_acc']:.1f}", "Acc. test %": fmt_acc([s["test_acc"]], s.get("test_images")),
        "Top-5 %": f"{100 * s['top5']:.1f}",
    }
