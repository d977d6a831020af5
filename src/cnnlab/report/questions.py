"""Exercise 4: the lab's review questions, answered from general knowledge and, where this lab
measured something relevant, from its own runs (the ``facts`` each section returned)."""

from __future__ import annotations

from typing import Any

from cnnlab.report.document import Document, Heading, Paragraph
from cnnlab.report.exercise2 import pair_sentence, sweep_sentence
from cnnlab.report.exercise3 import chosen_probes
from cnnlab.viz.comparisons import ranking
from cnnlab.viz.comparisons import budget_text, cost
from cnnlab.stats import difference

NOT_RUN = "(this lab's runs for it are missing, so no measured number is quoted)"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def answer_a(ex1: dict[str, Any]) -> str:
    text = ("A sequential model is one chain: each layer reads only the previous layer's output. The functional "
            "API (or, in PyTorch, a module whose forward is any graph) is needed as soon as the graph is not a "
            "chain: a layer feeding several others (multiple paths, as in inception blocks), tensors merged by "
            "concatenation or addition (multiple features, skip connections), shared layers, or several inputs "
            "or outputs. Exercise 1 draws such graphs (multipath, multifeature, residual).")
    if ex1.get("test_by_entry"):
        ranked = sorted(ex1["test_by_entry"].items(), key=lambda kv: kv[1], reverse=True)
        text += (" Measured here: " + ", ".join(f"{k} {_pct(v)}" for k, v in ranked)
                 + f" test accuracy (Table 1, {ex1.get('chosen_on_text', '')}). " + ex1.get("verdict", ""))
    else:
        text += " " + NOT_RUN
    return text


def answer_b(ex2: dict[str, Any]) -> str:
    text = ("Transfer learning reuses what a network learnt on a large dataset (ImageNet): its early and middle "
            "layers are generic detectors (edges, textures, parts), so a new task needs far fewer labelled "
            "images, less training time and less compute, and usually reaches a higher accuracy than the same "
            "network trained from random weights on the small dataset.")
    pairs = ex2.get("pairs") or []
    if pairs:
        text += " Measured here, like for like: " + " ".join(pair_sentence(p, z) for p, z in pairs)
    else:
        text += " " + NOT_RUN
    return text


def answer_c(ex2: dict[str, Any]) -> str:
    text = ("Freezing means keeping the pretrained weights fixed (no gradient, BatchNorm statistics kept): only "
            "the new head trains, and the frozen backbone's features can be computed once. With few training "
            "images, freezing avoids overfitting the many backbone weights; with more images, unfreezing the "
            "last blocks at a low learning rate (fine-tuning) adapts the high-level features and pays off.")
    pairs = ex2.get("frozen_vs_finetune") or []
    for frozen, tuned in pairs:
        d = difference([tuned["test_acc"]], [frozen["test_acc"]], tuned.get("test_images"), frozen.get("test_images"))
        verdict = d.verdict("fine-tuning paid off", "fine-tuning cost accuracy")
        ratio = cost(tuned)["seconds"] / max(cost(frozen)["seconds"], 1e-9)
        text += (f" Measured here ({frozen['backbone']} + {frozen['head']}, {frozen.get('train_images', '?')} training "
                 f"images): frozen {_pct(frozen['test_acc'])} ({budget_text(frozen)}, "
                 f"{frozen['trainable_params']:,} trainable parameters); fine-tuned {_pct(tuned['test_acc'])} "
                 f"({budget_text(tuned)}, {tuned['trainable_params']:,}): {verdict} (fine-tuned minus frozen: "
                 f"{d.text()}), at {ratio:.1f}x the time.")
    if not pairs:
        text += " " + NOT_RUN
    points = ex2.get("sweep") or []
    if points:
        text += " The data-size sweep, frozen against fine-tuned at each training size: " + sweep_sentence(points)
    else:
        text += (" How the choice moves with the training-set size needs the data-size sweep (`cnnlab food sweep`), "
                 "which has no runs here, so no measured trend is quoted.")
    return text


def answer_d(ex3: dict[str, Any]) -> str:
    text = ("An autoencoder learns to reproduce its input through a bottleneck. Uses: compression (the code is "
            "smaller than the input), denoising (noisy inputs to clean targets), features for other models, "
            "anomaly detection (high reconstruction error), generation and pre-training.")
    parts = []
    if "ae_psnr" in ex3:
        parts.append(f"the {ex3['ae_code']}-value dense code reconstructs test letters at {ex3['ae_psnr']:.1f} dB")
    svm = ex3.get("svm", {})
    if "ae" in svm and "raw" in svm:
        parts.append(f"an SVM on those codes reaches {_pct(float(svm['ae']['test_acc']))} against "
                     f"{_pct(float(svm['raw']['test_acc']))} on raw pixels")
    if "dae_gain" in ex3:
        parts.append(f"the convolutional denoiser changes the PSNR of noisy inputs by {ex3['dae_gain']:+.1f} dB")
    return text + (" Measured here (Exercise 3): " + "; ".join(parts) + "." if parts else " " + NOT_RUN)


def answer_e(ex3: dict[str, Any]) -> str:
    text = ("Extract features with an autoencoder when there are many unlabelled images but few labels, when "
            "the images are unlike ImageNet's (so pretrained features transfer poorly: letters, medical or "
            "industrial images), or when a compact code is wanted for speed or storage; its features keep what "
            "reconstruction needs, which is not always what separates the classes.")
    svm = ex3.get("svm", {})
    if "ae" in svm and "raw" in svm:
        ae, raw = float(svm["ae"]["test_acc"]), float(svm["raw"]["test_acc"])
        n = ex3.get("svm_test_images")
        d = difference([ae], [raw], n, n)
        text += (f" Measured here: an SVM on the {svm['ae']['dims']}-value codes reaches {_pct(ae)} against {_pct(raw)} "
                 f"on the {svm['raw']['dims']} pixels: " + d.verdict("the codes are ahead", "the pixels are ahead")
                 + f" (codes minus pixels: {d.text()}).")
    else:
        text += " " + NOT_RUN
    return text


def feature_ranking(features: dict[str, Any], budget: str) -> str:
    """The extractors ranked at one label budget (the probe chosen on val), the leader's margin with its
    interval, worded "within noise" when it covers 0."""
    best = chosen_probes(features["rows"])
    candidates = [(name, [float(r["test_acc"])], features["test_images"]) for (name, b), r in best.items() if b == budget]
    if len(candidates) < 2:
        return ""
    label = "all labels" if budget == "all" else f"{budget} labels per class"
    text, _ = ranking(candidates, f"test accuracy with {label}")
    return text


def answer_f(ex3: dict[str, Any]) -> str:
    text = ("Self-supervised learning makes labels from the data itself: a pretext task (predict a masked part, "
            "the rotation applied, or, in contrastive methods such as SimCLR, which two augmented views come from "
            "the same image) trains an encoder without human labels; the augmentations define what the features "
            "must ignore, and the loss (NT-Xent pulls the two views of an image together and pushes the other "
            "images of the batch apart, at a temperature) shapes the feature space. The encoder is then probed or "
            "fine-tuned with few labels.")
    s = ex3.get("ssl")
    if s:
        text += (f" Measured here: SimCLR on {s['train_images']} notMNIST letters without labels, views by {s['augmentations']}, "
                 f"temperature {s['temperature']:g}, batch {s['batch_size']} (each image's other {2 * s['batch_size'] - 2} "
                 f"views are its negatives): the NT-Xent loss went from {s['loss_first']:.3f} to {s['loss_last']:.3f} in "
                 f"{s['epochs']} epochs.")
        features = ex3.get("features")
        if features:
            text += " " + feature_ranking(features, min_budget(features))
            bought = versus(features, "ssl", "random", "SimCLR ahead", "the untrained encoder ahead")
            if bought:
                text += (" What the self-supervised training bought over the same encoder untrained: "
                         + "; ".join(bought) + ".")
    else:
        text += " (This lab has no self-supervised run, so no measured number is quoted.)"
    return text


def versus(features: dict[str, Any], mine: str, theirs: str, ahead: str, behind: str) -> list[str]:
    """``mine`` against ``theirs`` at the fewest labels and at all labels (each one's probe chosen on val):
    the verdict and the difference with its interval, one phrase per budget both have."""
    best = chosen_probes(features["rows"])
    phrases = []
    for b in dict.fromkeys([min_budget(features), "all"]):
        if (mine, b) in best and (theirs, b) in best:
            a, t = float(best[(mine, b)]["test_acc"]), float(best[(theirs, b)]["test_acc"])
            d = difference([a], [t], features["test_images"], features["test_images"])
            label = "all labels" if b == "all" else f"{b} labels per class"
            phrases.append(f"with {label}: {d.verdict(ahead, behind)} ({mine} minus {theirs}: {d.text()})")
    return phrases


def min_budget(features: dict[str, Any]) -> str:
    budgets = [str(r["budget"]) for r in features["rows"] if str(r["budget"]) != "all"]
    return min(budgets, key=int) if budgets else "all"


def answer_g(ex3: dict[str, Any]) -> str:
    text = ("Prefer autoencoder or self-supervised features when the images are far from the pretrained network's "
            "domain (grey letters are not ImageNet photographs), when plenty of unlabelled in-domain images exist, "
            "or when the pretrained network is too large for the deployment; prefer pretrained features when the "
            "domain is close and the in-domain data is small.")
    features = ex3.get("features")
    if not features:
        return text + " (The feature comparison has not been run here, so no measured ranking is quoted.)"
    sentences = [feature_ranking(features, b) for b in dict.fromkeys([min_budget(features), "all"])]
    pairs = [f"{own} against ImageNet features {phrase}" for own in ("ssl", "ae")
             for phrase in versus(features, own, "imagenet", f"{own} ahead", "ImageNet ahead")]
    return text + " Measured here: " + " ".join(x for x in sentences if x) + (" " + "; ".join(pairs) + "." if pairs else "")


# The lab sheet's Exercise 4, in its order: (letter, the question in this report's words, answer, facts).
QUESTIONS = [
    ("a", "Why, or when, is the functional API needed?", answer_a, "ex1"),
    ("b", "What are the benefits of transfer learning?", answer_b, "ex2"),
    ("c", "What does freezing mean in transfer learning, and how does the training-set size bear on it?",
     answer_c, "ex2"),
    ("d", "What are autoencoders used for?", answer_d, "ex3"),
    ("e", "When would one extract features with an autoencoder?", answer_e, "ex3"),
    ("f", "What are the principles of self-supervised learning?", answer_f, "ex3"),
    ("g", "When would one prefer autoencoder or self-supervised features to a pretrained network's?", answer_g,
     "ex3"),
]


def section(doc: Document, facts: dict[str, dict[str, Any]]) -> None:
    doc.add(Heading("Exercise 4: review questions", anchor="exercise-4"))
    doc.add(Paragraph("The lab sheet's questions a) to g), in its order and restated in this report's words; each "
                      "answer is general knowledge plus this lab's own measurements where it has them, with "
                      "their 95% intervals."))
    for letter, question, answer, source in QUESTIONS:
        doc.add(Paragraph(f"**{letter}) {question}** {answer(facts.get(source, {}))}"))
