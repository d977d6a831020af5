"""The Keras side of bench/keras_peer.py: the CNN a Keras course writes, trained in Keras on the arrays
that keras_peer.py decoded with cnnlab from the shared CIFAR-10 copy. Needs only numpy and
tensorflow-cpu + keras (the ``.venv-keras`` that ``make bench-keras`` builds), not cnnlab.

    python bench/keras_course.py --data ARRAYS.npz --epochs 2 --out RESULT.json

Conv 32-32 / max-pool / dropout 0.25 / Conv 64-64 / max-pool / dropout 0.25 / Dense 512 / dropout 0.5 /
Dense 10 ('same' padding, ReLU: 2,168,362 parameters), Adam 1e-3, batch 128, images scaled to [0, 1], the
test split scored after every epoch as the course's ``fit(validation_data=...)`` does. Writes per epoch:
training seconds (the epoch's batches), wall seconds (with the evaluation) and test accuracy; and the
process's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import keras
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(0)
    arrays = np.load(args.data)
    x_train, y_train = arrays["x_train"].astype("float32") / 255.0, arrays["y_train"]  # (N, 32, 32, 3) in [0, 1]
    x_test, y_test = arrays["x_test"].astype("float32") / 255.0, arrays["y_test"]

    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(), layers.Dropout(0.25),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(), layers.Dropout(0.25),
        layers.Flatten(), layers.Dense(512, activation="relu"), layers.Dropout(0.5), layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.begin = time.perf_counter()

        def on_test_begin(self, logs=None):  # the epoch's batches are done; evaluation starts
            self.trained = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            end = time.perf_counter()
            epochs.append({"epoch": epoch + 1, "train_s": self.trained - self.begin, "wall_s": end - self.begin,
                           "test_acc": float(logs["val_accuracy"])})

    epochs: list[dict] = []
    started = time.perf_counter()
    model.fit(x_train, y_train, batch_size=128, epochs=args.epochs, validation_data=(x_test, y_test),
              callbacks=[Clock()], verbose=0)
    result = {"who": "Keras", "versions": f"keras {keras.__version__}, tensorflow {tf.__version__}",
              "precision": "float32 (Keras's default)", "params": int(model.count_params()),
              "train_images": int(len(x_train)), "test_images": int(len(x_test)), "epochs": epochs,
              "wall_s": time.perf_counter() - started,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
