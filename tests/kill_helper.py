"""Train a tiny CIFAR run that SIGKILLs itself at a chosen point; used by test_kill_resume.py.

    python tests/kill_helper.py POINT CONFIG_JSON

POINT: mid-epoch (epoch 2, second batch), checkpoint-write (half of epoch 2's last.ckpt written to its
temporary file), best-copy (epoch 1's last.ckpt written, its best.ckpt copy not yet; with monitor none, the copy made when
fit finishes), final-eval (the
first re-evaluation of best.ckpt after training). And one that is no kill: sigint-in-write (Ctrl-C
arrives inside the OS write of epoch 2's last.ckpt), run through the command line to see its exit code.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys

import torch

from cnnlab.config import build
from cnnlab.experiments import cifar
from cnnlab.train import checkpoint as ck


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    if point == "mid-epoch":
        step = cifar.ClassifierModule.training_step

        def training_step(self, batch, batch_idx):
            if self.current_epoch == 1 and batch_idx == 1:
                die()
            return step(self, batch, batch_idx)

        cifar.ClassifierModule.training_step = training_step
    elif point == "checkpoint-write":
        save, calls = torch.save, []

        def torch_save(obj, f, *args, **kwargs):
            if isinstance(obj, dict) and "state_dict" in obj and hasattr(f, "write"):
                calls.append(1)
                if len(calls) == 2:
                    buf = io.BytesIO()
                    save(obj, buf)
                    f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                    die()
            return save(obj, f, *args, **kwargs)

        torch.save = torch_save
    elif point == "best-copy":
        ck.copy_atomic = lambda source, target: die()
    elif point == "sigint-in-write":
        from cnnlab import files

        wrap, files_seen = files._WriteErrorKept.__init__, []

        class Raw:  # the file under torch.save's zip writer: Ctrl-C lands in the middle of a write
            def __init__(self, raw):
                self.raw, self.writes = raw, 0
                if "last.ckpt" in str(raw.name):
                    files_seen.append(raw.name)
                self.armed = len(files_seen) == 2 and "last.ckpt" in str(raw.name)

            def write(self, data):
                self.writes += 1
                if self.armed and self.writes == 5:
                    raise KeyboardInterrupt
                return self.raw.write(data)

            def flush(self):
                self.raw.flush()

        files._WriteErrorKept.__init__ = lambda self, raw: wrap(self, Raw(raw))
    elif point == "final-eval":
        cifar.predict_logits = lambda *args, **kwargs: die()
    else:
        raise SystemExit(f"unknown point {point}")


if __name__ == "__main__":
    arm(sys.argv[1])
    if sys.argv[1] == "sigint-in-write":
        from cnnlab.cli import main

        raise SystemExit(main(sys.argv[2:]))
    cifar.train(build(cifar.CifarConfig, **json.loads(sys.argv[2])))
    raise SystemExit("not killed")
