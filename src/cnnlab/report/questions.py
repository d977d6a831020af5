"""Exercise 4: the lab's review questions, answered from general knowledge and, where this lab
measured something relevant, from its own runs (the ``facts`` each section returned)."""

from __future__ import annotations

from typing import Any

from cnnlab.report.document import Document, Heading, Paragraph

NOT_RUN = "(this lab's runs for it are missing, so no measured number is quoted)"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def answer_a(ex1: dict[str, Any]) -> str:
    text = ("A sequential model is a single chain: each layer reads only the previous layer's output. A "
            "non-sequential (functional) model is a graph: a layer may feed several others (multiple paths), "
            "several tensors may be merged by concatenation or addition (multiple features, skip connections), "
            "and a model may have several inputs or outputs. It is needed whenever information must flow around "
            "or alongside the main chain.")
    if ex1.get("test_by_entry"):
        ranked = sorted(ex1["test_by_entry"].items(), key=lambda kv: kv[1], reverse=True)
        text += " Here: " + ", ".join(f"{k} {_pct(v)}" for k, v in ranked) + " test accuracy (Table 1)."
    else:
        text += " " + NOT_RUN
    return text


def answer_b(ex1: dict[str, Any]) -> str:
    text = ("A skip connection adds a block's input to its output, so the block only has to learn a residual "
            "correction and the gradient has a direct path back through the addition. Deep plain stacks suffer "
            "from vanishing gradients and degrade as they get deeper; residual networks keep training well.")
    tests = ex1.get("test_by_entry", {})
    res = {k: v for k, v in tests.items() if k.startswith("residual")}
    if res and "sequential_test" in ex1:
        name, acc = max(res.items(), key=lambda kv: kv[1])
        params = ex1["params_by_entry"]
        text += (f" In this lab {name} reached {_pct(acc)} against {_pct(ex1['sequential_test'])} for the sequential "
                 f"baseline, with {params[name]:,} against {params.get('sequential', 0):,} parameters.")
    return text


def answer_c(ex1: dict[str, Any]) -> str:
    return ("A checkpoint callback (Keras' ModelCheckpoint; cnnlab's EpochRecord) watches a metric after every epoch and saves the weights whenever it improves, "
            "so the model kept is the best epoch's rather than the last one's; training can overshoot "
            "and a later epoch may be worse. Monitoring test accuracy, as the lab asks, makes the reported test "
            "accuracy optimistic, because the test set chose the epoch; an honest protocol monitors a held-out "
            "validation split (`--monitor val`) and touches the test set once." +
            (f" Best epochs here: see the hyper-parameter table ({ex1['seeds']} seed(s) per model)." if ex1 else ""))


def answer_d(ex2: dict[str, Any]) -> str:
    text = ("ImageNet's early and middle layers learn generic detectors (edges, textures, colour blobs, object "
            "parts) that are useful for any photograph, food included; only the last layers are specific to "
            "ImageNet's classes. Reusing them gives a strong start with far less data and compute.")
    if "scratch_test" in ex2:
        best_pre = max(ex2.get(k, 0.0) for k in ("frozen_test", "finetune_test"))
        text += (f" Measured here: {_pct(best_pre)} with pretrained weights against {_pct(ex2['scratch_test'])} "
                 f"from scratch on the same {ex2.get('num_classes')} classes.")
    else:
        text += " " + NOT_RUN
    return text


def answer_e(ex2: dict[str, Any]) -> str:
    text = ("Freeze the backbone when data is scarce or compute is short: only the head trains, features can be "
            "computed once, and nothing can overfit in the backbone. Fine-tune (unfreeze the last blocks at a low "
            "learning rate, after the head has converged) when there is enough data and the target domain differs "
            "from ImageNet, to adapt the high-level features.")
    if "frozen_test" in ex2 and "finetune_test" in ex2:
        text += (f" Measured here: frozen {_pct(ex2['frozen_test'])} in {ex2['frozen_time']:.0f} s with "
                 f"{ex2['frozen_trainable']:,} trainable parameters; fine-tuned {_pct(ex2['finetune_test'])} in "
                 f"{ex2['finetune_time']:.0f} s with {ex2['finetune_trainable']:,}. Fine-tuning "
                 + ("paid off" if ex2["finetune_test"] > ex2["frozen_test"] else "did not pay off")
                 + f" by {100 * abs(ex2['finetune_test'] - ex2['frozen_test']):.1f} points, at "
                 f"{ex2['finetune_time'] / max(ex2['frozen_time'], 1e-9):.0f}x the training time.")
    else:
        text += " " + NOT_RUN
    return text


def answer_f(ex2: dict[str, Any]) -> str:
    return ("A pretrained network only works on inputs distributed like its training inputs: the same size, "
            "crop, interpolation, and normalisation (mean and standard deviation per channel, or a [-1, 1] "
            "scaling for EfficientNet-Lite). cnnlab reads each backbone's own data config from timm rather than "
            "retyping it; feeding differently normalised pixels shifts every activation and costs accuracy "
            "without any error message.")


def answer_g(ex3: dict[str, Any]) -> str:
    text = ("An autoencoder learns to reproduce its input through a bottleneck. Uses: compression (the code is "
            "smaller than the input), denoising (trained from noisy inputs to clean targets), features for other "
            "models, anomaly detection (high reconstruction error), and pre-training.")
    parts = []
    if "ae_psnr" in ex3:
        parts.append(f"the {ex3['ae_code']}-value dense code reconstructs test letters at {ex3['ae_psnr']:.1f} dB")
    svm = ex3.get("svm", {})
    if "ae" in svm and "raw" in svm:
        parts.append(f"an SVM on those codes reaches {_pct(float(svm['ae']['test_acc']))} against "
                     f"{_pct(float(svm['raw']['test_acc']))} on raw pixels")
    if "dae_gain" in ex3:
        parts.append(f"the convolutional denoiser lifts noisy inputs by {ex3['dae_gain']:+.1f} dB")
    return text + (" Measured here: " + "; ".join(parts) + "." if parts else " " + NOT_RUN)


QUESTIONS = [
    ("a", "What is a non-sequential model, and when is one needed?", answer_a, "ex1"),
    ("b", "Why do skip connections help?", answer_b, "ex1"),
    ("c", "What does the checkpoint callback do, and what should it monitor?", answer_c, "ex1"),
    ("d", "Why do ImageNet features work on food photographs?", answer_d, "ex2"),
    ("e", "When should the pretrained backbone be frozen, and when fine-tuned?", answer_e, "ex2"),
    ("f", "Why must the preprocessing match the backbone?", answer_f, "ex2"),
    ("g", "What are autoencoders good for?", answer_g, "ex3"),
]


def section(doc: Document, facts: dict[str, dict[str, Any]]) -> None:
    doc.add(Heading("Exercise 4: review questions", anchor="exercise-4"))
    doc.add(Paragraph("The questions are paraphrased; each answer quotes this lab's own measurements where it has them."))
    for letter, question, answer, source in QUESTIONS:
        doc.add(Paragraph(f"**{letter}) {question}** {answer(facts.get(source, {}))}"))
