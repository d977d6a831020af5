"""Every command's config, composed from parts: the run, the hardware, the optimisation (see
``cnnlab.train.options``), the data, the model. Keys are dotted paths (``optim.lr``, ``data.limit_train``)
with bare shorthands where unique (``--lr``); see ``cnnlab.config`` for the grammar.

Torch-free, so that ``cnnlab <command> --help`` is quick: names that need a registry (architectures,
backbones, autoencoders) are checked when a command runs, before any data is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cnnlab.config import field
from cnnlab.errors import ConfigError
from cnnlab.train.options import AutoencoderOptim, ClassifierOptim, Hardware, RunOptions

DEFAULT_FOOD_CLASSES = 20  # the lab asks for the first 20 classes of Food-101 (as cnnlab.data.food101)


def run_name(what: str, seed: int, **sizes: int) -> str:
    """The one naming scheme of runs: what the run is, the data sizes that differ from the whole set
    (``n2000``: 2,000 training images; ``pc50``: 50 images per class; ``c10``: 10 classes), then the seed.

    >>> run_name("residual", 0, n=2000)
    'residual-n2000-s0'
    """
    tags = [f"{tag}{value}" for tag, value in sizes.items() if value]
    return "-".join([what.replace("/", "_").replace(":", "").replace(",", "-"), *tags, f"s{seed}"])


def name_of(cfg: Any) -> str:
    """The run's name: the one given, else the one its config derives (``default_name``), so that a
    changed seed or subset also changes the derived name."""
    return cfg.run.name or cfg.default_name()


def at_least(value: float, low: float, key: str) -> None:
    if value < low:
        raise ConfigError(f"{key}: must be at least {low:g}, got {value:g}")


def a_fraction(value: float, key: str) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{key}: must be in [0, 1), got {value:g}")


# ---- Exercise 1: CIFAR-10 ----------------------------------------------------------------------


@dataclass
class CifarData:
    """Data: the CIFAR-10 source, subsets, the monitored split and augmentation."""

    data_dir: str = field("", "CIFAR-10 source: cifar-10-batches-py/ folder, image tree, or .tar/.tar.gz of "
                              "either (default: look under the data root, else download)")
    data_root: str = field("", "folder in which datasets are looked up (default: $CNNLAB_DATA, else ~/.cache/cnnlab)")
    limit_train: int = field(0, "class-balanced subset of the training images (0: all)")
    limit_test: int = field(0, "class-balanced subset of the test images (0: all)")
    monitor: Literal["test", "val", "none"] = field("val", "split whose accuracy picks best.ckpt: val (held out of "
                                                           "train), or test as the lab sheet asks (an optimistic test "
                                                           "figure; val, when held out, is then scored too, for the "
                                                           "honest one), or none: no per-epoch evaluation, the last "
                                                           "epoch is the result (needs val_fraction 0; for recipes "
                                                           "that end at their best, as the fast one does)")
    val_fraction: float = field(0.1, "class-balanced fraction of train held out as val (0: none; then monitor test or none)")
    # Off by default: on runs of a few epochs, crops cost more than they regularise; recipes for longer
    # runs set it (Table 1 and the fast recipe do).
    crop_padding: int = field(0, "random-crop augmentation padding in pixels (0: off; 2-4 pays on long runs)")
    crop_fill: Literal["zeros", "reflect"] = field("zeros", "what the crops' padding shows: zeros, or the edge pixels mirrored")
    flip: bool = field(True, "random horizontal flips")
    alternating_flips: bool = field(False, "with flip: mirror a seeded half of the images in even epochs and the "
                                           "other half in odd ones (airbench), instead of a coin flip per epoch")
    eval_batch_size: int = field(0, "images per batch when evaluating (0: 128 on a CPU, whose caches larger batches "
                                    "overflow, 1024 on a GPU; bench/eval_batch.py measures it)")
    eval_seed: int = field(0, "seed of the test subset and the val split: the same images for every run's seed")

    def __post_init__(self) -> None:
        at_least(self.limit_train, 0, "data.limit_train")
        at_least(self.limit_test, 0, "data.limit_test")
        at_least(self.eval_batch_size, 0, "data.eval_batch_size")
        a_fraction(self.val_fraction, "data.val_fraction")
        if self.monitor == "val" and self.val_fraction <= 0:
            raise ConfigError("data.monitor val needs data.val_fraction above 0 (or monitor test)")
        if self.monitor == "none" and self.val_fraction > 0:
            raise ConfigError(f"data.monitor none trains on all of train and scores nothing during training: a val "
                              f"split ({self.val_fraction:g} of train) would be held out for nothing; set "
                              f"data.val_fraction 0, or monitor val")


@dataclass
class CifarConfig:
    """cnnlab cifar train: one architecture on CIFAR-10 into runs/cifar/<name>/."""

    ALIASES = {"strategy": "hardware.strategy"}  # as before: in Exercise 1 there is no other strategy

    arch: str = field("residual", "registered architecture (see `cnnlab cifar archs`)")
    model: dict = field({}, "options of the architecture's config, e.g. --model.widths [32,64,128]")
    flip_tta: bool = field(False, "evaluate on each image and its mirror image, averaging the logits")
    shift_tta: bool = field(False, "with flip_tta and monitor val or none: the test split, scored once at the end, also "
                                   "averages in each image moved by 1 px down-right and up-left (6 views, "
                                   "airbench's); per-epoch evaluation and train accuracy keep the 2 flip views")
    run: RunOptions = field(RunOptions(), "the run")
    hardware: Hardware = field(Hardware(), "the hardware")
    # Batch 32: the first runs people try are a few epochs on a few thousand images, where the number of
    # steps matters more than the throughput per image (bench/cifar_quick_defaults.py).
    optim: ClassifierOptim = field(ClassifierOptim(batch_size=32), "the optimisation")
    data: CifarData = field(CifarData(), "the data")

    def __post_init__(self) -> None:
        if self.shift_tta and not (self.flip_tta and self.data.monitor in ("val", "none")):
            raise ConfigError("shift_tta adds views to flip_tta's in the test split's one final scoring: it needs "
                              "flip_tta true and data.monitor val or none")
        if self.data.monitor == "none" and self.optim.early_stopping_patience > 0:
            raise ConfigError("optim.early_stopping_patience needs a monitored split: data.monitor none scores "
                              "nothing during training")
        if self.data.monitor == "test" and self.data.val_fraction > 0 and self.optim.early_stopping_patience > 0:
            raise ConfigError("optim.early_stopping_patience with data.monitor test: the test set would decide when "
                              "to stop, so the epoch val chooses would not be an honest figure; monitor val to stop early")

    def sizes(self) -> dict[str, int]:
        return {"n": self.data.limit_train}

    def default_name(self) -> str:
        return run_name(self.arch, self.run.seed, **self.sizes())


@dataclass
class ArchOptions:
    """An architecture and its options (for `cifar summary` and `cifar graph`)."""

    arch: str = field("residual", "registered architecture (see `cnnlab cifar archs`)")
    model: dict = field({}, "options of the architecture's config, e.g. --model.widths [32,64,128]")


@dataclass
class GraphOptions(ArchOptions):
    """cnnlab cifar graph: an architecture graph with shapes (.svg, .png, or .gv source)."""

    out: str = field("architecture.svg", "output file: .svg, .png, or .gv (DOT source)")
    depth: int = field(3, "nesting depth to expand")


@dataclass
class CompareOptions:
    """A comparison: a preset of runs (defaults + one entry per run), each trained or reused."""

    preset: str = field("quick", "a preset shipped with cnnlab (quick, full) or a path to a preset YAML file")
    runs_dir: str = field("", "folder holding the runs (default: ./runs, or $CNNLAB_RUNS)")


@dataclass
class SeededCompareOptions(CompareOptions):
    """A comparison over seeds: a preset of runs, each trained (or reused) once per seed."""

    seeds: int = field(1, "seeds per entry; accuracies become mean ± std")

    def __post_init__(self) -> None:
        at_least(self.seeds, 1, "seeds")


@dataclass
class EvaluateOptions:
    """Re-score a run's best checkpoint on a chosen split (its own data settings, or another source)."""

    run_dir: str = field("", "the run folder (runs/<exercise>/<name>)")
    split: Literal["train", "test", "val"] = field("test", "split to score")
    data_dir: str = field("", "data source (default: the one the run was trained on)")
    data_root: str = field("", "folder in which datasets are looked up (default: the run's)")


# ---- Exercise 2: Food-101 -------------------------------------------------------------------------


@dataclass
class FoodData:
    """Data: the Food-101 source, how many classes and images, the backbone's input size."""

    data_dir: str = field("", "Food-101: a folder holding food-101/, or a .tar/.tar.gz of it (default: look "
                              "under the data root, else download about 5 GB)")
    data_root: str = field("", "folder in which datasets are looked up (default: $CNNLAB_DATA, else ~/.cache/cnnlab)")
    num_classes: int = field(0, f"the first N classes of meta/classes.txt (0: the lab's {DEFAULT_FOOD_CLASSES}, "
                                f"or as many as the data has when fewer, said in one line)")
    per_class_limit: int = field(0, "at most this many images per class in each split (0: all), for quick runs")
    train_per_class: int = field(0, "at most this many training images per class, drawn by the run's seed after val "
                                    "is held out; val and test stay whole (0: all): the data-size sweep")
    val_fraction: float = field(0.1, "class-balanced fraction of train held out as val, which picks best.ckpt and "
                                     "the best configuration (0: none, the test split picks them: optimistic)")
    input_size: int = field(0, "side of the square the backbone sees, px (0: the backbone's own, from timm)")
    eval_batch_size: int = field(0, "images (or cached feature vectors) per batch when evaluating or extracting "
                                    "features (0: 16 images on a CPU, where small batches are faster and lighter, 256 "
                                    "on a GPU, 1024 feature vectors; bench/eval_batch.py --backbones measures it)")
    eval_seed: int = field(0, "seed of the val split held out of train: the same images for every run's seed")

    def __post_init__(self) -> None:
        at_least(self.num_classes, 0, "data.num_classes")
        at_least(self.per_class_limit, 0, "data.per_class_limit")
        at_least(self.train_per_class, 0, "data.train_per_class")
        at_least(self.eval_batch_size, 0, "data.eval_batch_size")
        a_fraction(self.val_fraction, "data.val_fraction")


@dataclass
class SweepOptions:
    """cnnlab food sweep: test accuracy against training images per class, per strategy."""

    preset: str = field("sweep", "a preset shipped with cnnlab (sweep, sweep-full) or a path to a preset YAML file")
    runs_dir: str = field("", "folder holding the runs (default: ./runs, or $CNNLAB_RUNS)")


@dataclass
class Finetune:
    """Fine-tuning (strategy finetune): phase 1 trains the head on the frozen backbone, phase 2 unfreezes."""

    unfreeze: str = field("2", "blocks unfrozen at the end of the backbone in phase 2, a count or all")
    head_epochs: int = field(10, "epochs of phase 1 (the head on the frozen backbone)")
    lr: float = field(1e-4, "learning rate of phase 2, lower so pretrained weights move gently")
    bn_stats: bool = field(False, "BatchNorms of unfrozen blocks use and update batch statistics "
                                  "(default: every BatchNorm keeps its ImageNet statistics, as in keras.io)")


@dataclass
class FoodConfig:
    """cnnlab food train: one backbone + head + strategy on Food-101 into runs/food/<name>/."""

    # Names of earlier versions, still accepted; and keys of earlier run folders that mean nothing now.
    ALIASES = {"lr": "optim.lr", "finetune_lr": "finetune.lr", "finetune_bn_stats": "finetune.bn_stats",
               "lightning_strategy": "hardware.strategy", "unfreeze": "finetune.unfreeze",
               "head_epochs": "finetune.head_epochs"}
    RETIRED = ("flip_tta",)

    backbone: str = field("efficientnet_lite0", "registered backbone (`cnnlab food backbones`) or any timm model name")
    head: str = field("linear", "linear, or mlp:H1[,H2...] (hidden sizes)")
    strategy: Literal["frozen", "finetune", "scratch"] = field(
        "frozen", "transfer strategy: frozen backbone, two-phase finetune, or scratch (random init); "
                  "Lightning's strategy is --hardware.strategy")
    activation: str = field("relu", "MLP head activation: relu, gelu, silu, tanh")
    dropout: float = field(0.2, "head dropout: on the features (linear), after each hidden layer (mlp)")
    head_batch_norm: bool = field(False, "BatchNorm after each hidden layer of an MLP head")
    cache: bool = field(True, "frozen (and finetune phase 1): train the head from cached backbone features; "
                              "--no-cache trains through the backbone with augmentation")
    eval_train: bool = field(True, "re-evaluate the best checkpoint on the whole train split (off: report the "
                                   "train accuracy logged during its epoch)")
    run: RunOptions = field(RunOptions(), "the run")
    hardware: Hardware = field(Hardware(), "the hardware")
    optim: ClassifierOptim = field(ClassifierOptim(epochs=20, weight_decay=1e-4, schedule="cosine"),
                                   "the optimisation (finetune: of phase 1, the head; epochs: of phase 2)")
    finetune: Finetune = field(Finetune(), "fine-tuning")
    data: FoodData = field(FoodData(), "the data")

    def __post_init__(self) -> None:
        if self.finetune.unfreeze != "all" and not str(self.finetune.unfreeze).isdigit():
            raise ConfigError(f"finetune.unfreeze: expected a number of blocks or 'all', got {self.finetune.unfreeze!r}")

    def sizes(self) -> dict[str, int]:
        return {"c": self.data.num_classes, "pc": self.data.per_class_limit, "tpc": self.data.train_per_class}

    def default_name(self) -> str:
        """Backbone, head, strategy, then classes (once resolved: see ``food.train``) and limits."""
        what = f"{self.backbone}-{self.head}-{self.strategy}"
        if self.strategy == "finetune":
            what += f"-u{self.finetune.unfreeze}"
        return run_name(what, self.run.seed, **self.sizes())


# ---- Exercise 3: notMNIST -------------------------------------------------------------------------


@dataclass
class NotMnistData:
    """Data: where notMNIST comes from and how much of it to use (subsets are for quick runs)."""

    data_dir: str = field("", "folder with the four notMNIST idx files, .gz or not (default: data root, else download)")
    data_root: str = field("", "folder in which datasets are looked up (default: $CNNLAB_DATA, else ~/.cache/cnnlab)")
    limit_train: int = field(0, "class-balanced subset of the training images (0: all)")
    limit_test: int = field(0, "class-balanced subset of the test images (0: all)")
    val_fraction: float = field(0.1, "class-balanced fraction of the training images held out as val, whose loss "
                                     "picks best.ckpt (0: none, the test loss picks it: an optimistic test figure)")
    eval_batch_size: int = field(1000, "images per batch when evaluating")
    eval_seed: int = field(0, "seed of the test subset and the val split: the same images for every run's seed")

    def __post_init__(self) -> None:
        at_least(self.limit_train, 0, "data.limit_train")
        at_least(self.limit_test, 0, "data.limit_test")
        at_least(self.eval_batch_size, 1, "data.eval_batch_size")
        a_fraction(self.val_fraction, "data.val_fraction")


THREADS_HELP = ("CPU threads for torch (0: torch's default, all cores). One is fastest for these small models "
                "on a shared CPU (bench/notmnist.py measures it)")


@dataclass
class AEConfig:
    """cnnlab notmnist ae: the lab's shallow dense autoencoder (BCE, Adam, batch 256, 50 epochs)."""

    ALIASES = {"strategy": "hardware.strategy"}

    code_dim: int = field(32, "code size: units of the hidden layer")
    threads: int = field(1, THREADS_HELP)
    run: RunOptions = field(RunOptions(), "the run")
    # 32-true: the dense AE's matrices are too small for bf16 to pay.
    hardware: Hardware = field(Hardware(precision="32-true"), "the hardware")
    # 1.3e-3: higher kills ReLU code units over 50 epochs (bench/notmnist.py).
    optim: AutoencoderOptim = field(AutoencoderOptim(lr=1.3e-3), "the optimisation")
    data: NotMnistData = field(NotMnistData(), "the data")

    def __post_init__(self) -> None:
        at_least(self.code_dim, 1, "code_dim")

    def default_name(self) -> str:
        return run_name(f"dense-ae-{self.code_dim}", self.run.seed, n=self.data.limit_train)


@dataclass
class TableRun:
    """The table's run: its name and folder, the seed and the bars of the runs it trains.

    It reuses or trains runs of its own and rebuilds its table from them: nothing to resume or force.
    """

    name: str = field("", "name of the table (and of its run folder)")
    runs_dir: str = field("", "folder holding the runs (default: ./runs, or $CNNLAB_RUNS)")
    seed: int = field(0, "random seed of the runs it trains, shuffling and subsets")
    logger: Literal["none", "csv", "tensorboard"] = field("csv", "Lightning logger of the runs it trains")
    progress: bool = field(True, "progress bars on stderr, when it is a terminal")

    def __post_init__(self) -> None:
        at_least(self.seed, 0, "run.seed")


@dataclass
class SweepConfig:
    """cnnlab notmnist ae-sweep: one dense autoencoder per code size (each reused when trained); table and plot."""

    ALIASES = {"strategy": "hardware.strategy"}
    RETIRED = ("code_dim", "resume", "force")

    dims: list[int] = field([8, 16, 32, 64, 128], "code sizes to train")
    threads: int = field(1, THREADS_HELP)
    run: TableRun = field(TableRun(name="ae-sweep"), "the sweep's table")
    hardware: Hardware = field(Hardware(precision="32-true"), "the hardware")
    optim: AutoencoderOptim = field(AutoencoderOptim(lr=1.3e-3), "the optimisation of every autoencoder")
    data: NotMnistData = field(NotMnistData(), "the data")

    def __post_init__(self) -> None:
        if not self.dims or min(self.dims) < 1:
            raise ConfigError(f"dims: give one or more code sizes of at least 1, got {self.dims}")


@dataclass
class SvmOptions:
    """The SVM's grid search: C and gamma values, cross-validated on a class-balanced subsample."""

    c_values: list[float] = field([0.1, 1.0, 10.0, 100.0, 1000.0], "SVM C values tried by the grid search (log-spaced)")
    gamma_scales: list[float] = field([0.1, 0.3, 1.0, 3.0], "gamma values tried, as multiples of 1 / (dims * variance) "
                                                        "of the standardised features")
    cv_samples: int = field(2000, "class-balanced training subsample used by the grid search")
    cv_folds: int = field(3, "cross-validation folds of the grid search")


@dataclass
class SvmConfig:
    """cnnlab notmnist svm: RBF SVMs on raw pixels, autoencoder codes and PCA.

    PCA keeps as many components as the code has values.
    """

    # Training keys of earlier versions (the AE is trained by `notmnist ae`, or reused).
    RETIRED = ("epochs", "early_stopping_patience", "accelerator", "devices", "num_nodes", "strategy", "precision",
               "batch_size", "lr", "loss", "channels_last", "resume", "force")

    features: list[str] = field(["raw", "ae", "pca"], "feature kinds: raw, ae, pca")
    ae_run: str = field("", "run folder of `cnnlab notmnist ae` whose encoder gives the codes (default: the "
                            "newest finished `notmnist ae` run of code_dim on the same data and seed, else the "
                            "default one, trained now)")
    code_dim: int = field(32, "code size of the autoencoder trained or reused when ae_run is not given")
    threads: int = field(1, THREADS_HELP)
    svm: SvmOptions = field(SvmOptions(), "the grid search")
    run: TableRun = field(TableRun(name="svm"), "the SVM table's run")
    data: NotMnistData = field(NotMnistData(), "the data")


@dataclass
class DenoiseConfig:
    """cnnlab notmnist denoise: the lab's convolutional denoising autoencoder (MSE, Adam, batch 128, 10 epochs)."""

    ALIASES = {"strategy": "hardware.strategy"}

    model: str = field("conv-dae", "registered autoencoder (see `cnnlab notmnist summary --help`)")
    noise: str = field("gaussian:0.5", "KIND:AMOUNT, gaussian:FACTOR (clipped to [0, 1]) or saltpepper:FRACTION")
    test_noise_seed: int = field(1234, "seed of the fixed noise on the test images")
    threads: int = field(1, THREADS_HELP)
    run: RunOptions = field(RunOptions(), "the run")
    hardware: Hardware = field(Hardware(), "the hardware")
    optim: AutoencoderOptim = field(AutoencoderOptim(epochs=10, batch_size=128, loss="mse"), "the optimisation")
    data: NotMnistData = field(NotMnistData(), "the data")

    def __post_init__(self) -> None:
        if ":" not in self.noise:
            raise ConfigError(f"noise: expected KIND:AMOUNT such as gaussian:0.5, got {self.noise!r}")

    def default_name(self) -> str:
        return run_name(f"{self.model}-{self.noise}", self.run.seed, n=self.data.limit_train)


@dataclass
class SslOptim:
    """Optimisation of the self-supervised run: length, batch (pairs of views), AdamW, NT-Xent temperature."""

    epochs: int = field(15, "training epochs")
    batch_size: int = field(256, "images per batch (each seen as two views): the other 2*(B-1) views are negatives")
    lr: float = field(2e-3, "AdamW learning rate")
    weight_decay: float = field(1e-4, "AdamW weight decay")
    temperature: float = field(0.5, "NT-Xent temperature")

    def __post_init__(self) -> None:
        at_least(self.epochs, 1, "optim.epochs")
        at_least(self.batch_size, 2, "optim.batch_size")
        if self.temperature <= 0:
            raise ConfigError(f"optim.temperature: must be above 0, got {self.temperature:g}")


@dataclass
class SslConfig:
    """cnnlab notmnist ssl: a SimCLR encoder trained on the notMNIST training letters without their labels."""

    out_dim: int = field(64, "output size of the projection head (the loss's space; probes read the 128 encoder features)")
    threads: int = field(0, "CPU threads for torch (0: torch's default, all cores)")
    run: RunOptions = field(RunOptions(), "the run")
    hardware: Hardware = field(Hardware(), "the hardware")
    optim: SslOptim = field(SslOptim(), "the optimisation")
    data: NotMnistData = field(NotMnistData(), "the data (val is held out: probes choose their settings on it)")

    def default_name(self) -> str:
        return run_name("simclr", self.run.seed, n=self.data.limit_train)


FEATURE_KINDS = ("raw", "pca", "ae", "dae", "ssl", "random", "imagenet")


@dataclass
class FeaturesConfig:
    """cnnlab notmnist features: every feature extractor probed the same way at several label budgets."""

    extractors: list[str] = field(list(FEATURE_KINDS), "raw pixels, pca, ae (dense AE code), dae (conv DAE encoder), "
                                                      "ssl (SimCLR encoder), random (the same encoder untrained: what "
                                                      "SimCLR's training bought), imagenet (EfficientNet-Lite0 features)")
    budgets: list[int] = field([10, 50, 100, 0], "labelled training images per class (0: all)")
    logreg_c: list[float] = field([0.01, 0.1, 1.0], "C values of the logistic-regression probe, chosen on val accuracy")
    svm_c: list[float] = field([1.0, 10.0, 100.0], "C values of the RBF-SVM probe (gamma 'scale'), chosen on val accuracy")
    max_dims: int = field(784, "features wider than this are reduced by PCA (fitted on the training features, no "
                               "labels) before probing: no extractor is probed in more dimensions than the pixels")
    ae_run: str = field("", "`notmnist ae` run giving the codes (default: the newest finished one of --code-dim on "
                            "the same data)")
    code_dim: int = field(32, "code size of the dense AE probed (and PCA's components, as many)")
    dae_run: str = field("", "`notmnist denoise` run giving the encoder (default: the newest finished one)")
    ssl_run: str = field("", "`notmnist ssl` run giving the encoder (default: the newest finished one)")
    tsne_points: int = field(1000, "test letters in each 2-D t-SNE map")
    threads: int = field(0, "CPU threads for torch (0: torch's default, all cores)")
    run: TableRun = field(TableRun(name="features"), "the table's run")
    data: NotMnistData = field(NotMnistData(), "the data")

    def __post_init__(self) -> None:
        unknown = [e for e in self.extractors if e not in FEATURE_KINDS]
        if unknown:
            raise ConfigError(f"extractors: unknown {unknown[0]!r} (known: {', '.join(FEATURE_KINDS)})")
        if not self.budgets or min(self.budgets) < 0:
            raise ConfigError(f"budgets: give labels per class of at least 1 (0: all), got {self.budgets}")
        for name in ("logreg_c", "svm_c"):
            grid = getattr(self, name)
            if not grid or min(grid) <= 0:
                raise ConfigError(f"{name}: give at least one C above 0, got {grid}")
        if self.max_dims < 1:
            raise ConfigError(f"max_dims: give at least 1, got {self.max_dims}")
        if self.code_dim < 1:
            raise ConfigError(f"code_dim: give at least 1, got {self.code_dim}")


@dataclass
class AutoencoderOptions:
    """cnnlab notmnist summary: an autoencoder's layer table (input 1x28x28) and its code size."""

    model: str = field("conv-dae", "registered autoencoder: dense-ae or conv-dae")
    options: dict = field({}, "builder options, e.g. --options.code_dim 64")


# ---- the lab and its report -----------------------------------------------------------------------


@dataclass
class LabConfig:
    """cnnlab lab: every exercise of a preset, then the report.

    Finished runs are reused and an interrupted one resumes, so a killed lab started again loses no
    finished work.
    """

    preset: str = field("quick", "a preset shipped with cnnlab (quick, full) or a path to a preset YAML file")
    data_root: str = field("", "folder holding the datasets in any accepted form (default: $CNNLAB_DATA, "
                               "else ~/.cache/cnnlab)")
    runs_dir: str = field("", "folder holding the runs (default: ./runs, or $CNNLAB_RUNS)")
    only: list[str] = field([], "run only these exercises: cifar, food, notmnist (default: all; the report is "
                                "always rebuilt)")
    progress: bool = field(True, "progress bars on stderr, when it is a terminal")
    submission: bool = field(True, "end by writing submission.zip beside the report: the report (HTML, Markdown, "
                                   "PDF) and the three notebooks")
    notebooks: bool = field(True, "execute the notebooks into the submission (their own short runs; a few "
                                  "minutes each on 2 CPU cores)")


@dataclass
class ReportConfig:
    """cnnlab report: the lab report (HTML and Markdown) from whatever runs exist."""

    ALIASES = {"runs": "runs_dir"}

    runs_dir: str = field("", "folder holding the runs (default: ./runs, or $CNNLAB_RUNS)")
    out: str = field("reports/lab", "output folder")
