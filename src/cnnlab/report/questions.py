"""Exercise 4: the lab's review questions, answered from general knowledge and, where this lab
measured something relevant, from its own runs (the ``facts`` each section returned)."""

from __future__ import annotations

from typing import Any

from cnnlab.report.document import Document, Heading, Paragraph
from cnnlab.report.exercise2 import budget_text, cost, pair_sentence
from cnnlab.stats import difference

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
        text += (" Here: " + ", ".join(f"{k} {_pct(v)}" for k, v in ranked)
                 + f" test accuracy (Table 1, {ex1.get('chosen_on_text', '')}). " + ex1.get("verdict", ""))
    else:
        text += " " + NOT_RUN
    return text


def answer_b(ex1: dict[str, Any]) -> str:
    text = ("A skip connection adds a block's input to its output, so the block only has to learn a residual "
            "correction and the gradient has a direct path back through the addition; that is what lets very "
            "deep networks train (He et al., 2016).")
    values = ex1.get("values_by_entry", {})
    if "residual" in values and "sequential" in values:  # the two entries that share Table 1's recipe
        (res, n_res), (seq, n_seq) = values["residual"], values["sequential"]
        d = difference(res, seq, n_res, n_seq)
        params = ex1.get("params_by_entry", {})
        verdict = d.verdict("the residual network is ahead", "the residual network is behind")
        text += (f" In this lab, with the same recipe, residual reached {_pct(sum(res) / len(res))} against "
                 f"{_pct(sum(seq) / len(seq))} for the sequential baseline ({params.get('residual', 0):,} against "
                 f"{params.get('sequential', 0):,} parameters): {verdict} (residual minus sequential: {d.text()}; "
                 f"{ex1.get('chosen_on_text', '')}).")
    else:
        text += " " + NOT_RUN
    return text


def answer_c(ex1: dict[str, Any]) -> str:
    return ("A checkpoint callback (Keras' ModelCheckpoint; cnnlab's EpochRecord) watches a metric after every epoch and saves the weights whenever it improves, "
            "so the model kept is the best epoch's rather than the last one's; training can overshoot "
            "and a later epoch may be worse. Monitoring test accuracy, as the lab asks, makes the reported test "
            "accuracy optimistic, because the test set chose the epoch; an honest protocol monitors a held-out "
            "validation split (`--monitor val`) and touches the test set once." +
            (f" Best epochs here: see the hyper-parameter table ({max(ex1['seeds_by_entry'].values())} seed(s) per "
             f"model at most); Table 1 shows both test figures." if ex1.get("seeds_by_entry") else ""))


def answer_d(ex2: dict[str, Any]) -> str:
    text = ("ImageNet's early and middle layers learn generic detectors (edges, textures, colour blobs, object "
            "parts) that are useful for any photograph, food included; only the last layers are specific to "
            "ImageNet's classes. Reusing them gives a strong start with far less data and compute.")
    pairs = ex2.get("pairs") or []
    if pairs:
        text += " Measured here, like for like: " + " ".join(pair_sentence(p, z) for p, z in pairs)
    else:
        text += " " + NOT_RUN
    return text


def answer_e(ex2: dict[str, Any]) -> str:
    text = ("Freeze the backbone when data is scarce or compute is short: only the head trains, features can be "
            "computed once, and nothing can overfit in the backbone. Fine-tune (unfreeze the last blocks at a low "
            "learning rate, after the head has converged) when there is enough data and the target domain differs "
            "from ImageNet, to adapt the high-level features.")
    pairs = ex2.get("frozen_vs_finetune") or []
    for frozen, tuned in pairs:
        d = difference([tuned["test_acc"]], [frozen["test_acc"]], tuned.get("test_images"), frozen.get("test_images"))
        verdict = d.verdict("fine-tuning paid off", "fine-tuning cost accuracy")
        ratio = cost(tuned)["seconds"] / max(cost(frozen)["seconds"], 1e-9)
        text += (f" Measured here ({frozen['backbone']} + {frozen['head']}): frozen {_pct(frozen['test_acc'])} "
                 f"({budget_text(frozen)}, {frozen['trainable_params']:,} trainable parameters); fine-tuned "
                 f"{_pct(tuned['test_acc'])} ({budget_text(tuned)}, {tuned['trainable_params']:,}): {verdict} "
                 f"(fine-tuned minus frozen: {d.text()}), at {ratio:.1f}x the time.")
    if not pairs:
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
