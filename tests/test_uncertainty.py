"""Every accuracy in a comparison table says how uncertain it is."""

from __future__ import annotations

import pytest

from cnnlab.viz.comparisons import food_row, table1_row
from cnnlab.viz.tables import fmt_acc, wilson_interval


def test_one_run_on_n_images_carries_its_wilson_interval():
    low, high = wilson_interval(0.77, 1250)
    assert high - low == pytest.approx(0.0466, abs=0.002)  # about ±2.3 points, as the issue says
    assert fmt_acc([0.77], 1250) == f"77.0 [{100 * low:.1f}, {100 * high:.1f}]"
    assert fmt_acc([0.77], 100) != fmt_acc([0.77], 1250)  # fewer images, wider interval


def test_several_seeds_show_mean_and_spread_and_no_count_shows_the_value():
    assert fmt_acc([0.9, 0.92], 1000) == "91.0 ± 1.4"
    assert fmt_acc([0.9], None) == "90.0"


def test_table_rows_use_the_test_image_count_of_the_run():
    cifar = {"architecture": "a", "callback": "c", "train_acc": 0.5, "test_acc": 0.45, "params": 1, "epochs": 2,
             "best_epoch": 2, "hyperparameters": {"optimizer": "adamw", "lr": 1e-3, "batch_size": 32},
             "wall_time_s": 3.0, "test_images": 1000}
    assert table1_row("m", [cifar])["Acc. test %"] == fmt_acc([0.45], 1000)
    food = {"backbone": "b", "head": "linear", "strategy": "frozen", "trainable_params": 10, "epochs": 2,
            "best_epoch": 1, "wall_time_s": 5.0, "train_acc": 0.9, "test_acc": 0.77, "top5": 0.95, "test_images": 1250}
    assert food_row(food)["Acc. test %"] == fmt_acc([0.77], 1250) and "[" in food_row(food)["Acc. test %"]


def test_every_test_figure_says_which_split_chose_its_epoch():
    from cnnlab.viz.comparisons import chosen_on

    assert "chosen on test accuracy: an optimistic" in chosen_on([{"monitor": "test_acc"}])
    assert chosen_on([{"monitor": "val_acc"}]) == "best epoch chosen on validation; test scored once"
    assert "for some runs" in chosen_on([{"monitor": "val_acc"}, {"monitor": "test_acc"}])
