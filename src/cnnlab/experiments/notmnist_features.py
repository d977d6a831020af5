"""Exercise 4 f) and g), measured: a self-supervised encoder on notMNIST, and one protocol that probes every
feature extractor the same way.

    cnnlab notmnist ssl        # SimCLR on the training letters, no labels -> runs/notmnist/simclr-s0/
    cnnlab notmnist features   # raw, PCA, AE code, DAE encoder, SimCLR encoder, ImageNet features

The protocol (``features``): the same training, validation and test letters for every extractor; for each
label budget (labelled training images per class) the same class-balanced labelled subset, drawn by the
seed; each extractor's features (PCA-reduced to at most ``max_dims``) standardised and probed by logistic
regression and by an RBF SVM, each probe's C chosen on validation accuracy, the chosen one scored once on test (with its Wilson interval).
Outputs: ``features.{md,csv,tex}``, ``features.png`` (test accuracy against labels per class, log axis)
and ``tsne.png`` (a 2-D t-SNE map of each feature space on test letters, coloured by class).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import numpy as np
import torch

from cnnlab import config as cfgmod
from cnnlab import files
from cnnlab.data.notmnist import CLASSES
from cnnlab.data.splits import Dataset
from cnnlab.data.views import ViewPairs, describe_views
from cnnlab.errors import ConfigError
from cnnlab.experiments.common import diverged_runs_recorded, open_run, reused, trained
from cnnlab.experiments.configs import AEConfig, DenoiseConfig, FeaturesConfig, SslConfig
from cnnlab.experiments.notmnist import EXERCISE, data_fingerprint, finished_table, load_images
from cnnlab.models.autoencoders import create_autoencoder
from cnnlab.models.registry import count_params
from cnnlab.models.ssl import SimCLR
from cnnlab.paths import runs_root
from cnnlab.runs import best_checkpoint, environment, is_finished, new_run_dir, read_summary, write_summary
from cnnlab.stats import wilson_interval
from cnnlab.train.autoencoder import encode_all
from cnnlab.train.checkpoint import load_model_weights, read_rows
from cnnlab.train.engine import Length, cpu_threads, fit, resolve_precision
from cnnlab.train.ssl import SimCLRModule, ssl_features
from cnnlab.viz.tables import write_table

# ---- ssl: SimCLR on the training letters --------------------------------------------------------


def train_ssl(cfg: SslConfig) -> Path:
    """Train the SimCLR encoder on the training letters (val and test unseen); returns its run folder.

    Raises:
        DataError: missing or corrupt data. TrainingDiverged: a NaN loss (the run is recorded as diverged).
    """
    with cpu_threads(cfg.threads):
        pl.seed_everything(cfg.run.seed, verbose=False)
        images = load_images(cfg.data, cfg.run.seed)
        letters = (images.train.x * 255).round().to(torch.uint8)  # PIL views are drawn from the 8-bit letters
        model = SimCLR(cfg.out_dim)
        run_dir = open_run(EXERCISE, cfg, cfg.run, images.fingerprint)
        g = torch.Generator().manual_seed(cfg.run.seed)
        batch = cfg.optim.batch_size
        loader = torch.utils.data.DataLoader(ViewPairs(letters), batch_size=batch, shuffle=True, generator=g,
                                             drop_last=len(letters) > batch)
        module = SimCLRModule(model, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                              temperature=cfg.optim.temperature, hparams=cfgmod.to_dict(cfg))
        with diverged_runs_recorded(run_dir, EXERCISE, count_params(model), kind="ssl"):
            result = fit(module, loader, None, run_dir, cfg.run, cfg.hardware, Length(cfg.optim.epochs),
                         monitor="train_loss", mode="min")
        if not result.is_global_zero:
            return run_dir
        losses = [float(r["train_loss"]) for r in read_rows(run_dir / "metrics.csv")[1] if r.get("train_loss")]
        write_summary(run_dir, {
            "name": run_dir.name, "exercise": EXERCISE, "kind": "ssl", "method": "SimCLR (NT-Xent, lightly)",
            "params": count_params(model), "encoder_params": count_params(model.encoder), "features": 128,
            "epochs": result.epochs, "best_epoch": result.best_epoch, "loss_first": losses[0], "loss_last": losses[-1],
            "temperature": cfg.optim.temperature, "batch_size": batch, "augmentations": describe_views(),
            "checkpoint": "best.ckpt: the encoder after its last epoch (no labels, so no split to pick an epoch by)",
            "train_images": len(letters), "wall_time_s": result.wall_time_s, "precision": result.precision,
            "data_fingerprint": images.fingerprint, "seed": cfg.run.seed, **environment()})
        return run_dir


# ---- the extractors ---------------------------------------------------------------------------------


def newest_run(cfg: FeaturesConfig, given: str, qualifies: Callable[[dict], bool], command: str) -> Path:
    """``given``, else the newest finished run of ``runs/notmnist`` that ``qualifies`` on the same data.

    Raises:
        ConfigError: none exists (naming the command that makes one).
    """
    if given:
        return Path(given)
    base = runs_root(cfg.run.runs_dir or None) / EXERCISE
    wanted = data_fingerprint(cfg)
    found = [p for p in base.glob("*") if is_finished(p) and qualifies(s := read_summary(p))
             and s.get("status") != "diverged" and s.get("data_fingerprint") == wanted] if base.is_dir() else []
    if not found:
        raise ConfigError(f"no finished run for these features in {base}: run `cnnlab notmnist {command}` first "
                          f"(or pass its folder)")
    return max(found, key=lambda p: (p / "summary.json").stat().st_mtime_ns)


def imagenet_features(x: torch.Tensor, batch_size: int = 0) -> torch.Tensor:
    """EfficientNet-Lite0's pooled ImageNet features (N, 1280) of letters (N, 1, 28, 28) in [0, 1]: grey
    replicated to RGB, resized to the backbone's input with its interpolation, normalised by its timm
    data config. Under bf16 autocast where this machine's default precision is bf16, as Food's
    extraction, and in batches of ``batch_size`` (0: ``image_batch_size``, small on a CPU)."""
    import torch.nn.functional as F

    from cnnlab.data.preprocess import preprocess_for
    from cnnlab.models.backbones import create_backbone
    from cnnlab.train.features import image_batch_size
    from cnnlab.train.inference import in_batches, run_batches

    model = create_backbone("efficientnet_lite0")
    pre = preprocess_for(model)
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)

    def prepare(batch: torch.Tensor) -> torch.Tensor:
        rgb = batch.expand(-1, 3, -1, -1)
        big = F.interpolate(rgb, size=(pre.input_size, pre.input_size), mode=pre.interpolation, align_corners=False)
        return (big.clamp(0, 1) - mean) / std

    bf16 = resolve_precision("auto").startswith("bf16")
    batch_size = batch_size or image_batch_size(next(model.parameters()).device)
    return run_batches(model, model, in_batches(x, batch_size, prepare), bf16=bf16)


def extractor(kind: str, cfg: FeaturesConfig, images: Dataset) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """(images (N, 1, 28, 28) -> features (N, D), where it comes from) for one kind (see ``FEATURE_KINDS``)."""
    if kind == "raw":
        return (lambda x: x.flatten(1)), "the 784 pixels"
    if kind == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=cfg.code_dim, random_state=cfg.run.seed).fit(images.train.x.flatten(1).numpy())
        return (lambda x: torch.from_numpy(pca.transform(x.flatten(1).numpy())).float()), \
            f"{cfg.code_dim} principal components of the training pixels (as many as the AE code)"
    if kind == "ae":
        # Of its code size: the lab's code-size sweep leaves newer dense AEs of other sizes beside it.
        run = newest_run(cfg, cfg.ae_run, lambda s: s.get("model") == "dense-ae" and s.get("code_dim") == cfg.code_dim,
                         f"ae --code-dim {cfg.code_dim}")
        ae_cfg = cfgmod.load(AEConfig, run / "config.yaml")
        model = load_model_weights(create_autoencoder("dense-ae", code_dim=ae_cfg.code_dim), best_checkpoint(run))
        return (lambda x: encode_all(model, x)), f"the dense AE's {ae_cfg.code_dim}-value code ({run.name})"
    if kind == "dae":
        run = newest_run(cfg, cfg.dae_run, lambda s: "psnr_gain_db" in s, "denoise")
        dae_cfg = cfgmod.load(DenoiseConfig, run / "config.yaml")
        model = load_model_weights(create_autoencoder(dae_cfg.model), best_checkpoint(run))
        return (lambda x: encode_all(model, x)), f"the conv DAE's encoder output, flattened ({run.name})"
    if kind == "ssl":
        run = newest_run(cfg, cfg.ssl_run, lambda s: s.get("kind") == "ssl", "ssl")
        ssl_cfg = cfgmod.load(SslConfig, run / "config.yaml")
        model = load_model_weights(SimCLR(ssl_cfg.out_dim), best_checkpoint(run))  # its last epoch: see train_ssl
        return (lambda x: ssl_features(model, x)), f"the SimCLR encoder's 128 features ({run.name})"
    if kind == "random":  # the SimCLR encoder as initialised: the baseline its training must beat
        torch.manual_seed(cfg.run.seed)
        model = SimCLR()
        return (lambda x: ssl_features(model, x)), "the SimCLR encoder untrained (random weights, seeded)"
    if kind == "imagenet":
        return imagenet_features, "EfficientNet-Lite0's 1280 ImageNet features (letters resized to 224 px, grey to RGB)"
    raise ConfigError(f"unknown feature kind {kind!r}")


# ---- the probes -------------------------------------------------------------------------------------


PROBES = ("logreg", "svm")


def probe(kind: str, c: float):
    """A standardising pipeline ending in logistic regression (``logreg``) or an RBF SVM (``svm``, gamma
    'scale', as Exercise 3's SVM). A kernel SVM rather than LinearSVC: on all the training letters'
    pixels LinearSVC fitted several times slower and scored lower on val (measured once, see the
    issue's closing note)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    clf = LogisticRegression(C=c, max_iter=2000) if kind == "logreg" else SVC(C=c, kernel="rbf", gamma="scale")
    return make_pipeline(StandardScaler(), clf)


def narrowed(feats: dict[str, np.ndarray], max_dims: int, seed: int) -> dict[str, np.ndarray]:
    """``feats`` as they are when at most ``max_dims`` wide, else their first ``max_dims`` principal
    components, fitted on the training features (all of them, no labels: the probes' budgets only limit
    labels), applied to every split. Features (N, D) -> (N, min(D, max_dims)); fewer components when
    there are fewer training rows than ``max_dims`` (PCA finds at most that many)."""
    if feats["train"].shape[1] <= max_dims:
        return feats
    from sklearn.decomposition import PCA

    components = min(max_dims, len(feats["train"]))
    pca = PCA(n_components=components, svd_solver="randomized", random_state=seed).fit(feats["train"])
    return {split: pca.transform(x).astype(np.float32) for split, x in feats.items()}


def labelled(y: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Indices of the class-balanced labelled subset: ``per_class`` per class (0: all), drawn by ``seed``.
    The same indices serve every extractor."""
    from cnnlab.data.loader import class_balanced_indices

    if per_class <= 0 or per_class * len(torch.unique(y)) >= len(y):
        return torch.arange(len(y))
    return class_balanced_indices(y, per_class * len(torch.unique(y)), seed=seed)


def fitted(kind: str, c: float, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
           y_val: np.ndarray) -> tuple[float, Any]:
    """(val accuracy, the fitted probe) of one C."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = probe(kind, c).fit(x_train, y_train)
    return float((model.predict(x_val) == y_val).mean()), model


def probe_rows(name: str, feats: dict[str, np.ndarray], y: dict[str, np.ndarray], budgets: list[int],
               subsets_by_budget: dict[int, torch.Tensor], grids: dict[str, list[float]],
               extracted_dims: int | None = None, n_jobs: int = 1) -> list[dict[str, Any]]:
    """One row per (budget, probe): C chosen on val from ``grids[probe]`` (the first of equal ones), then
    test scored once. ``extracted_dims``: the extractor's width before ``narrowed`` (default: the width
    probed). ``n_jobs``: C values fitted in parallel processes (joblib; the same fits as one by one)."""
    from joblib import Parallel, delayed

    rows = []
    with Parallel(n_jobs=n_jobs) as parallel:
        for budget in budgets:
            idx = subsets_by_budget[budget].numpy()
            x_train, y_train = feats["train"][idx], y["train"][idx]
            for kind in PROBES:
                started = time.perf_counter()
                grid = grids[kind]
                results = parallel(delayed(fitted)(kind, c, x_train, y_train, feats["val"], y["val"]) for c in grid)
                best = max(range(len(grid)), key=lambda i: (results[i][0], -i))
                (val, model), c = results[best], grid[best]
                rows.append(scored(name, feats, y, kind, budget, c, val, model, extracted_dims, started))
    return rows


def scored(name: str, feats: dict[str, np.ndarray], y: dict[str, np.ndarray], kind: str, budget: int, c: float,
           val: float, model: Any, extracted_dims: int | None, started: float) -> dict[str, Any]:
    """The row of the probe chosen on val: its test accuracy (scored once) with its Wilson interval."""
    test = float((model.predict(feats["test"]) == y["test"]).mean())
    low, high = wilson_interval(test, len(y["test"]))
    return {"features": name, "dims": extracted_dims or feats["train"].shape[1], "dims_probed": feats["train"].shape[1],
            "probe": kind, "labels_per_class": budget or round(len(y["train"]) / len(np.unique(y["train"]))),
            "budget": "all" if budget == 0 else str(budget), "C": c, "val_acc": round(val, 4),
            "test_acc": round(test, 4), "test_low": round(low, 4), "test_high": round(high, 4),
            "seconds": round(time.perf_counter() - started, 2)}


# ---- the protocol -----------------------------------------------------------------------------------


def features(cfg: FeaturesConfig) -> Path:
    """Probe every extractor of ``cfg`` at every label budget (see the module docstring); returns the run
    folder holding the table, the plots and ``summary.json``.

    Raises:
        ConfigError: an extractor whose run is missing (naming the command that makes it).
    """
    with cpu_threads(cfg.threads):
        images = load_images(cfg.data, cfg.run.seed)
        if images.val is None:
            raise ConfigError("features: probes choose C on a val split: set data.val_fraction above 0")
        sources = {kind: extractor(kind, cfg, images) for kind in cfg.extractors}  # a missing run fails first
        run_dir = new_run_dir(EXERCISE, cfg.run.name, runs_dir=cfg.run.runs_dir or None)
        cfgmod.save(cfg, run_dir / "config.yaml")
        y = {s: images.split(s).y.numpy() for s in ("train", "val", "test")}
        budgets = {b: labelled(images.train.y, b, cfg.run.seed) for b in cfg.budgets}
        rows, maps, started = [], {}, time.perf_counter()
        for kind, (extract, origin) in sources.items():
            t0 = time.perf_counter()
            feats = {s: extract(images.split(s).x).numpy() for s in ("train", "val", "test")}
            dims = feats["train"].shape[1]
            print(f"cnnlab: {kind}: {dims} features, extracted in {time.perf_counter() - t0:.0f} s; "
                  f"probing", file=sys.stderr, flush=True)
            feats = narrowed(feats, cfg.max_dims, cfg.run.seed)
            rows += probe_rows(kind, feats, y, cfg.budgets, budgets, {"logreg": cfg.logreg_c, "svm": cfg.svm_c}, dims,
                               n_jobs=cfg.threads or os.cpu_count() or 1)
            maps[kind] = tsne_map(feats["test"][:cfg.tsne_points], cfg.run.seed)
        caption = (f"Features for few labels on notMNIST: {len(images.train)} training letters (labels drawn per "
                   f"class), {len(images.val)} val (choosing C), {len(images.test)} test (scored once); 95% Wilson "
                   f"intervals")
        outputs = write_table(rows, run_dir / "features", caption=caption)
        from cnnlab.viz.features import plot_label_budgets, plot_maps

        plot_label_budgets(rows, run_dir / "features.png")
        plot_maps(maps, images.test.y[:cfg.tsne_points].numpy(), CLASSES, run_dir / "tsne.png")
        files.write_text(run_dir / "summary.json", json.dumps({
            "name": run_dir.name, "exercise": EXERCISE, "kind": "features", "rows": rows,
            "origins": {k: v[1] for k, v in sources.items()}, "train_images": len(images.train),
            "val_images": len(images.val), "test_images": len(images.test), "data_fingerprint": images.fingerprint,
            "wall_time_s": time.perf_counter() - started, "seed": cfg.run.seed, **environment()}, indent=2))
        print(outputs[0].read_text())
        return run_dir


def tsne_map(x: np.ndarray, seed: int) -> np.ndarray:
    """A 2-D t-SNE embedding (scikit-learn) of standardised features (N, D) -> (N, 2)."""
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    scaled = StandardScaler().fit_transform(x)
    return TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, max(2.0, (len(x) - 1) / 3))
                ).fit_transform(scaled)


def ssl_or_reuse(cfg: SslConfig) -> Path:
    """A finished ``ssl`` run of ``cfg`` on the same data (reused), an interrupted one (resumed), or a new one."""
    return trained(EXERCISE, cfg, train_ssl, data_fingerprint)


def features_or_reuse(cfg: FeaturesConfig) -> Path:
    """A finished ``features`` run of the same config on the same data, else one made now."""
    return reused(finished_table(cfg), lambda: features(cfg))


# ---- the commands (see cnnlab.cli) -----------------------------------------------------------------


def cmd_ssl(cfg: SslConfig) -> int:
    run_dir = train_ssl(cfg)
    if (run_dir / "summary.json").is_file():
        s = read_summary(run_dir)
        print(f"{run_dir}: NT-Xent loss {s['loss_first']:.3f} -> {s['loss_last']:.3f} over {s['epochs']} epochs "
              f"({s['wall_time_s']:.0f} s)")
    return 0


def cmd_features(cfg: FeaturesConfig) -> int:
    run_dir = features(cfg)
    print(f"{run_dir}: table in {run_dir / 'features.md'} (also .csv, .tex); plots features.png, tsne.png")
    return 0
