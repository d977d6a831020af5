"""Every accuracy in a comparison table says how uncertain it is."""

from __future__ import annotations

import pytest

from cnnlab.viz.comparisons import (TEST_ON_TEST, TEST_ON_VAL, food_choice, food_row, ranking, shared_recipe, table1_row,
                                    table1_verdict)
from cnnlab.stats import difference, wilson_interval
from cnnlab.viz.tables import fmt_acc


def test_one_run_on_n_images_carries_its_wilson_interval():
    low, high = wilson_interval(0.77, 1250)
    assert high - low == pytest.approx(0.0466, abs=0.002)  # about ±2.3 points, as the issue says
    assert fmt_acc([0.77], 1250) == f"77.0 [{100 * low:.1f}, {100 * high:.1f}]"
    assert fmt_acc([0.77], 100) != fmt_acc([0.77], 1250)  # fewer images, wider interval


def test_several_seeds_show_mean_and_spread_and_no_count_shows_the_value():
    assert fmt_acc([0.9, 0.92], 1000) == "91.0 ± 1.4"
    assert fmt_acc([0.9], None) == "90.0"


def cifar_summary(test_acc: float = 0.45, monitor: str = "test_acc", val_chosen: dict | None = None, **more) -> dict:
    return {"architecture": "a", "callback": "c", "train_acc": 0.5, "test_acc": test_acc, "params": 1, "epochs": 2,
            "best_epoch": 2, "hyperparameters": {"optimizer": "adamw", "lr": 1e-3, "batch_size": 32},
            "wall_time_s": 3.0, "test_images": 1000, "monitor": monitor, "val_chosen": val_chosen, **more}


def test_table_rows_use_the_test_image_count_of_the_run():
    row = table1_row("m", [cifar_summary(0.45, "test_acc", {"epoch": 1, "val_acc": 0.4, "test_acc": 0.43})])
    assert row[TEST_ON_TEST] == fmt_acc([0.45], 1000)
    assert row[TEST_ON_VAL] == fmt_acc([0.43], 1000)  # the honest figure beside the lab's
    on_val = table1_row("m", [cifar_summary(0.43, "val_acc", {"epoch": 1, "val_acc": 0.4, "test_acc": 0.43})])
    assert on_val[TEST_ON_TEST] == "-" and on_val[TEST_ON_VAL] == fmt_acc([0.43], 1000)
    assert table1_row("m", [cifar_summary(0.45)])[TEST_ON_VAL] == "-"  # no val held out: no honest figure
    food = {"backbone": "b", "head": "linear", "strategy": "frozen", "trainable_params": 10, "epochs": 2,
            "best_epoch": 1, "wall_time_s": 5.0, "train_acc": 0.9, "test_acc": 0.77, "top5": 0.95, "test_images": 1250}
    assert food_row(food)["Acc. test %"] == fmt_acc([0.77], 1250) and "[" in food_row(food)["Acc. test %"]


def test_every_test_figure_says_which_split_chose_its_epoch():
    from cnnlab.viz.comparisons import chosen_on

    assert "chosen on test accuracy: an optimistic" in chosen_on([{"monitor": "test_acc"}])
    assert chosen_on([{"monitor": "val_acc"}]) == "best epoch chosen on validation; test scored once"
    assert "for some runs" in chosen_on([{"monitor": "val_acc"}, {"monitor": "test_acc"}])
    assert chosen_on([{"monitor": "none"}]) == "last epoch kept, none chosen; test scored once"
    assert chosen_on([{"monitor": "none"}, {"monitor": "val_acc"}]) == (
        "best epoch chosen on validation, or the last epoch kept; test scored once")
    # the full preset: the lab's entries monitor test, the fast recipe's entry nothing
    assert chosen_on([{"monitor": "test_acc"}, {"monitor": "none"}]) == (
        "best epoch chosen on test accuracy for some runs (optimistic), the last epoch kept for others")
    assert chosen_on([{"monitor": "test_acc"}, {"monitor": "none"}, {"monitor": "val_acc"}]).endswith(
        "(optimistic), on validation or the last epoch kept for others")


def test_a_run_that_chose_no_epoch_gives_an_honest_figure_and_an_honest_verdict():
    from cnnlab.viz.comparisons import table1_verdict

    last = cifar_summary(0.61, "none", None)
    assert table1_row("m", [last])[TEST_ON_VAL] == fmt_acc([0.61], 1000) and table1_row("m", [last])[TEST_ON_TEST] == "-"
    on_val = cifar_summary(0.55, "val_acc", {"epoch": 1, "val_acc": 0.5, "test_acc": 0.55})
    text, facts = table1_verdict([("fast", [last]), ("sequential", [on_val])])
    assert facts["chosen_on"] == "val" and facts["best"] == "fast" and "or the last epoch kept" in text
    # an entry that chose on test without a val split still makes the verdict the optimistic one
    text, facts = table1_verdict([("fast", [last]), ("sequential", [cifar_summary(0.7)])])
    assert facts["chosen_on"] == "test" and facts["best"] == "sequential" and "optimistic" in text


def test_difference_of_single_runs_is_newcombe_and_of_seeds_is_welch():
    clear = difference([0.80], [0.70], 1000, 1000)
    assert clear.method.startswith("Newcombe") and 0.05 < clear.low < clear.diff < clear.high < 0.15
    assert not clear.within_noise
    close = difference([0.80], [0.79], 1000, 1000)
    assert close.within_noise and close.low < 0 < close.high
    welch = difference([0.80, 0.81, 0.79], [0.70, 0.71, 0.69], 1000, 1000)
    assert welch.method.startswith("Welch") and not welch.within_noise
    noisy = difference([0.80, 0.60, 0.70], [0.69, 0.71, 0.70], 1000, 1000)
    assert noisy.within_noise  # same mean gap as nothing, huge seed spread
    assert difference([0.8], [0.7]).within_noise and "unknown" in difference([0.8], [0.7]).text()
    # Seeds that all agree have no spread for Welch: the test-set sampling is what is left, not [d, d].
    flat = difference([0.80, 0.80], [0.79, 0.79], 1000, 1000)
    assert flat.method.startswith("Newcombe") and flat.within_noise and flat.low < flat.diff < flat.high
    mixed = difference([0.80], [0.70, 0.72], 1000, 1000)  # one seed against two: no honest interval
    assert not mixed.known and mixed.verdict("ahead", "behind") == "no interval to judge by"


def test_a_ranking_says_within_noise_exactly_when_the_interval_covers_zero():
    text, facts = ranking([("a", [0.80], 1000), ("b", [0.79], 1000)], "test accuracy")
    assert "within noise" in text and facts["within_noise"]
    text, facts = ranking([("a", [0.80], 1000), ("b", [0.70], 1000)], "test accuracy")  # swap the numbers
    assert "within noise" not in text and "ahead of b" in text and not facts["within_noise"]
    text, _ = ranking([("b", [0.70], 1000), ("a", [0.80], 1000)], "test accuracy")
    assert text.startswith("**a** has the highest")  # order of candidates does not matter


def test_table1_verdict_chooses_on_validation_when_every_run_has_it():
    seq = cifar_summary(0.60, "test_acc", {"epoch": 2, "val_acc": 0.5, "test_acc": 0.50})
    res = cifar_summary(0.55, "test_acc", {"epoch": 2, "val_acc": 0.6, "test_acc": 0.58})
    text, facts = table1_verdict([("sequential", [seq]), ("residual", [res])])
    # On test, sequential (60%) beats residual (55%); on the epochs val chose, residual (58%) beats it (50%).
    assert facts["chosen_on"] == "val" and facts["best"] == "residual" and "epoch chosen on validation" in text
    assert "sequential baseline reaches 50.0%" in text
    old = cifar_summary(0.55, "test_acc", None)  # a run without val: the verdict falls back, and says so
    text, facts = table1_verdict([("sequential", [seq]), ("residual", [old])])
    assert facts["chosen_on"] == "test" and "optimistic" in text and facts["best"] == "sequential"


def food_summary(label: str, val: float, test: float, monitor: str = "val_acc") -> dict:
    return {"backbone": label, "head": "linear", "strategy": "frozen", "trainable_params": 10, "epochs": 2,
            "best_epoch": 1, "wall_time_s": 5.0, "train_acc": 0.9, "test_acc": test, "top5": 0.95,
            "test_images": 1250, "val_images": 375, "monitor": monitor, "best_monitored": val, "num_classes": 10}


def test_the_best_food_configuration_is_chosen_on_validation_not_test():
    a, b = food_summary("a", val=0.90, test=0.70), food_summary("b", val=0.70, test=0.80)
    best, text = food_choice([a, b])
    assert best is a and "chosen on validation" in text and "Its test accuracy: 70.0%" in text
    a_test, b_test = food_summary("a", 0.9, 0.70, "test_acc"), food_summary("b", 0.7, 0.80, "test_acc")
    best, text = food_choice([a_test, b_test])
    assert best is b_test and "optimistic" in text

def test_train_accuracy_says_which_kind_it_is():
    clean = food_summary("a", 0.9, 0.8) | {"train_acc_source": "best checkpoint re-evaluated"}
    logged = food_summary("a", 0.9, 0.8) | {"train_acc_source": "logged during the best epoch"}
    assert food_row(clean)["Acc. train %"] == "90.0"
    assert food_row(logged)["Acc. train %"] == "90.0 (logged, augmented)"


def test_transfer_is_measured_like_for_like_only():
    from pathlib import Path

    from cnnlab.report.exercise2 import pair_sentence, transfer_pairs
    from cnnlab.report.runs import Run

    def run(backbone, strategy, acc, train_images=3370):
        s = food_summary(backbone, 0.8, acc) | {"strategy": strategy, "train_images": train_images,
                                               "features": {"built": True, "seconds": 40.0}}
        return Run(Path(f"/runs/{backbone}-{strategy}"), s)

    runs = [run("lite0", "frozen", 0.80), run("lite0", "scratch", 0.30), run("lite2", "frozen", 0.85),
            run("lite0", "finetune", 0.82, train_images=1000)]
    pairs = transfer_pairs(runs)
    assert [(p["backbone"], p["strategy"]) for p, _ in pairs] == [("lite0", "frozen")]  # same backbone, head, data
    text = pair_sentence(*pairs[0])
    assert "45 s" in text and "images through the backbone" in text  # extraction counted in the frozen budget
    assert "the ImageNet weights bought accuracy" in text


def test_table1_states_the_recipe_its_rows_share_and_names_what_differs():
    hp = {"optimizer": "sgd", "lr": 0.2, "batch_size": 128, "label_smoothing": 0.1, "flip": True,
          "precision": "bf16-mixed", "precision_reason": "auto: ..."}
    a = cifar_summary(hyperparameters=hp, train_images=45000, val_images=5000, epochs=3)
    b = cifar_summary(hyperparameters=dict(hp), train_images=45000, val_images=5000, epochs=3)
    text = shared_recipe([a, b])
    assert text.startswith("Recipe shared by every row: epochs 3, training images 45,000, val images 5,000")
    for part in ("lr 0.2", "batch size 128", "label smoothing 0.1", "flip on", "precision bf16-mixed"):
        assert part in text
    assert "auto" not in text and "differs" not in text  # the reason for a precision is not a setting
    c = cifar_summary(hyperparameters={**hp, "lr": 0.05}, train_images=9000, val_images=5000, epochs=3)
    text = shared_recipe([a, c])
    assert "lr 0.2" not in text and "training images" not in text.split(";")[0]
    assert text.endswith("differs between rows: training images, lr.")


def test_the_recipe_line_leaves_diverged_runs_out():
    hp = {"optimizer": "sgd", "lr": 0.2, "batch_size": 128}
    done = cifar_summary(hyperparameters=hp, epochs=3)
    diverged = {"status": "diverged", "name": "x", "epochs": 0, "params": 1, "wall_time_s": 1.0}
    assert shared_recipe([done, diverged]) == shared_recipe([done])
    assert "differs" not in shared_recipe([done, diverged])
    assert shared_recipe([diverged]) == "Recipe: no run finished."
