"""Exercise 4 f) and g) on real notMNIST (../shared/data/notmnist): the SimCLR run's training time and loss,
and the feature comparison (raw, PCA, AE code, DAE encoder, SimCLR encoder, the same encoder untrained,
ImageNet features) at several label budgets.

    python bench/notmnist_features.py [--ssl-epochs 15] [--budgets 10,50,100,0] [--runs-dir DIR]

Prints, on this machine: the SimCLR run's seconds, epochs and NT-Xent loss (first and last epoch); the
seconds of each autoencoder it needs (trained here unless found in --runs-dir); the pivot of the feature
table (test accuracy [95% Wilson interval] of the probe chosen on val, per extractor and budget); the
wall time of the comparison. Runs go to a temporary folder unless --runs-dir is given.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import _common

from cnnlab.config import build
from cnnlab.experiments.configs import AEConfig, DenoiseConfig, FeaturesConfig, SslConfig
from cnnlab.experiments.notmnist import denoise, trained_ae
from cnnlab.experiments.notmnist_features import features, ssl_or_reuse
from cnnlab.report.exercise3 import feature_pivot
from cnnlab.runs import read_summary
from cnnlab.train.engine import quiet_lightning
from cnnlab.viz.tables import to_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ssl-epochs", type=int, default=15)
    parser.add_argument("--budgets", default="10,50,100,0")
    parser.add_argument("--runs-dir", default="")
    args = parser.parse_args()
    quiet_lightning()
    _common.header("notMNIST: self-supervised and other features for few labels")
    data = str(_common.shared_data("notmnist"))
    runs = args.runs_dir or tempfile.mkdtemp(prefix="cnnlab-bench-")
    common = dict(data_dir=data, runs_dir=runs, progress=False)
    started = time.perf_counter()
    ae = trained_ae(build(AEConfig, **common, logger="none"))
    dae = denoise(build(DenoiseConfig, **common, logger="none", force=True))
    print(f"autoencoders: dense {read_summary(ae)['wall_time_s']:.0f} s, denoising {read_summary(dae)['wall_time_s']:.0f} s")
    ssl = read_summary(ssl_or_reuse(build(SslConfig, **common, logger="none", epochs=args.ssl_epochs)))
    print(f"SimCLR: {ssl['epochs']} epochs on {ssl['train_images']} letters in {ssl['wall_time_s']:.0f} s; "
          f"NT-Xent {ssl['loss_first']:.3f} -> {ssl['loss_last']:.3f}")
    t0 = time.perf_counter()
    run = features(build(FeaturesConfig, **common, budgets=[int(b) for b in args.budgets.split(",")],
                         name="features-bench"))
    summary = read_summary(run)
    print(f"\nfeature comparison in {time.perf_counter() - t0:.0f} s ({run})\n")
    print(to_markdown(feature_pivot(summary["rows"])))
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
