"""SVM classification of notMNIST letters on three kinds of features: raw pixels, an autoencoder's codes,
and PCA with as many components as the code has values.

Each feature kind is a registered function; the classifier is always scikit-learn's RBF ``SVC`` on
standardised features, with C and gamma picked by a small cross-validated grid on a class-balanced
subsample (the grid's cost grows with the square of the samples, the final fit runs once on all).
Used by ``cnnlab notmnist svm`` (see ``cnnlab.experiments.notmnist``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnlab.data.loader import class_balanced_indices
from cnnlab.registry import Registry
from cnnlab.train.autoencoder import encode_all

FEATURES = Registry("SVM feature kind")


@dataclass
class FeatureInputs:
    """What a feature kind may use: images (N, 1, 28, 28) in [0, 1], the autoencoder, its code size."""

    x_train: torch.Tensor
    x_test: torch.Tensor
    autoencoder: nn.Module | None
    code_size: int


@FEATURES.register("raw")
def raw_pixels(inputs: FeatureInputs) -> tuple[np.ndarray, np.ndarray]:
    return inputs.x_train.flatten(1).numpy(), inputs.x_test.flatten(1).numpy()  # (N, 784)


@FEATURES.register("ae")
def autoencoder_codes(inputs: FeatureInputs) -> tuple[np.ndarray, np.ndarray]:
    model = inputs.autoencoder
    return encode_all(model, inputs.x_train).numpy(), encode_all(model, inputs.x_test).numpy()  # (N, code)


@FEATURES.register("pca")
def pca_components(inputs: FeatureInputs) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import PCA

    train, test = raw_pixels(inputs)
    pca = PCA(n_components=inputs.code_size, random_state=0).fit(train)
    return pca.transform(train), pca.transform(test)  # (N, code_size)


@dataclass
class SvmGrid:
    c_values: list[float]
    gamma_scales: list[float]  # multiples of scikit-learn's 'scale' gamma, 1 / (dims * variance)
    cv_samples: int
    cv_folds: int
    seed: int = 0


def _pipeline(c: float, gamma: float):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(kernel="rbf", C=c, gamma=gamma))


def grid_edges(c: float, gamma_scale: float, grid: SvmGrid) -> list[str]:
    """Which of the chosen values sit on an edge of a grid of several values: the best may lie beyond it."""
    edges = []
    for name, value, values in (("C", c, grid.c_values), ("gamma", gamma_scale, grid.gamma_scales)):
        if len(values) > 1 and value in (min(values), max(values)):
            edges.append(f"{name} {value:g} is the {'lowest' if value == min(values) else 'highest'} tried")
    return edges


def pick_hyperparameters(train: np.ndarray, y: np.ndarray, grid: SvmGrid) -> tuple[float, float, float, float]:
    """(C, gamma, gamma as a multiple of the scale, mean CV accuracy) of the best grid point,
    cross-validated on a balanced subsample."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    idx = class_balanced_indices(torch.from_numpy(y), min(grid.cv_samples, len(y)), seed=grid.seed).numpy()
    x_cv, y_cv = train[idx], y[idx]
    scaled = StandardScaler().fit_transform(x_cv)
    scale_gamma = 1.0 / (scaled.shape[1] * max(float(scaled.var()), 1e-12))
    folds = min(grid.cv_folds, int(np.bincount(y_cv).min()))
    gammas = [m * scale_gamma for m in grid.gamma_scales]
    search = GridSearchCV(_pipeline(1.0, scale_gamma), {"svc__C": grid.c_values, "svc__gamma": gammas},
                          cv=StratifiedKFold(max(folds, 2), shuffle=True, random_state=grid.seed), n_jobs=1)
    search.fit(x_cv, y_cv)
    best_gamma = search.best_params_["svc__gamma"]
    return (search.best_params_["svc__C"], best_gamma, grid.gamma_scales[gammas.index(best_gamma)],
            float(search.best_score_))


def svm_row(kind: str, inputs: FeatureInputs, y_train: np.ndarray, y_test: np.ndarray, grid: SvmGrid) -> dict:
    """One row of the table: features, grid pick, test accuracy and seconds to fit and predict."""
    started = time.perf_counter()
    train, test = FEATURES.get(kind)(inputs)
    features_s = time.perf_counter() - started
    c, gamma, gamma_scale, cv_acc = pick_hyperparameters(train, y_train, grid)
    edges = grid_edges(c, gamma_scale, grid)
    if edges:
        print(f"cnnlab: svm on {kind}: {'; '.join(edges)}: widen the grid (--svm.c_values, "
              f"--svm.gamma_scales)", file=sys.stderr)
    started = time.perf_counter()
    clf = _pipeline(c, gamma).fit(train, y_train)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    predicted = clf.predict(test)
    predict_s = time.perf_counter() - started
    return {"features": kind, "dims": int(train.shape[1]), "C": c, "gamma": float(gamma), "cv_acc": cv_acc,
            "test_acc": float((predicted == y_test).mean()), "fit_s": fit_s, "predict_s": predict_s,
            "features_s": features_s, "grid_edge": "; ".join(edges)}


def svm_table(kinds: list[str], inputs: FeatureInputs, y_train: torch.Tensor, y_test: torch.Tensor,
              grid: SvmGrid) -> list[dict]:
    for kind in kinds:
        FEATURES.get(kind)  # fail on a typo before any work
    return [svm_row(kind, inputs, y_train.numpy(), y_test.numpy(), grid) for kind in kinds]
