"""Report section for Exercise 3: the dense autoencoder's reconstructions and codes, compression by loss
and by bandwidth, the code-size sweep, SVMs on codes vs pixels, the denoising autoencoder, and the
exercise's questions answered from those numbers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from cnnlab.report.document import Document, Figure, Heading, Missing, Paragraph, Preformatted, Table
from cnnlab.experiments.compression import compression_caption
from cnnlab.report.runs import add_diverged, Run, load_runs, newest
from cnnlab.stats import difference

NOT_MEASURED = "Run `cnnlab notmnist ae` again to measure it."
HOW = "Run `cnnlab notmnist ae`, `ae-sweep`, `svm` and `denoise` (or `cnnlab lab`)."


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _fmt(v: Any) -> Any:
    return f"{v:.4g}" if isinstance(v, float) else v


def dense_section(doc: Document, ae_runs: list[Run], facts: dict[str, Any]) -> None:
    doc.add(Heading("Shallow dense autoencoder", level=3))
    if not ae_runs:
        doc.add(Missing("no dense autoencoder run", HOW))
        return
    lab_code = [r for r in ae_runs if r.summary.get("code_dim") == 32]  # the lab's code size, when it was run
    main = newest(lab_code or ae_runs)
    s = main.summary
    facts.update(ae_code=s["code_dim"], ae_psnr=s["test_psnr"], ae_mse=s["test_mse"], ae_ssim=s.get("test_ssim"),
                 ae_epochs=s["epochs"], ae_decoder_bytes=s.get("decoder_bytes_float32"), ae_summary=s,
                 ae_run=main.name)
    doc.add(Paragraph(f"Run `{main.name}`. 784 -> {s['code_dim']} (ReLU) -> 784 (sigmoid); encoder, decoder and "
                      f"autoencoder are three "
                      f"models sharing one set of weights. {s['epochs']} epochs, {s['hyperparameters']['loss']} loss, "
                      f"Adam, batch {s['hyperparameters']['batch_size']}: test MSE {s['test_mse']:.4f}, "
                      f"PSNR {s['test_psnr']:.2f} dB, SSIM {s.get('test_ssim', float('nan')):.3f}."))
    for name, caption in (("reconstructions.png", "Test inputs (top) and their reconstructions (bottom)"),
                          ("codes.png", f"The {s['code_dim']}-value codes of the same images, as tiles")):
        if (main.path / "figures" / name).is_file():
            doc.add(Figure(main.path / "figures" / name, caption))
    rows = s.get("compression") or []
    if rows:
        matched = any(" at the 8-bit code's " in r["method"] for r in rows)
        caption = (compression_caption({"compression_images": s.get("compression_images", 0),
                                        "decoder_bytes_float32": s.get("decoder_bytes_float32", 0)})
                   if matched else f"table of an earlier cnnlab, on the first {s.get('compression_images', '?')} "
                                   f"test images, codecs not matched to the code's quality")
        doc.add(Table([{k: _fmt(v) for k, v in r.items()} for r in rows],
                      caption="Compression by loss and by bandwidth: " + caption))
        facts["compression"] = rows


def sweep_section(doc: Document, runs_dir: Path, facts: dict[str, Any]) -> None:
    doc.add(Heading("Impact of the code size", level=3))
    tables = sorted((runs_dir / "notmnist").glob("*sweep*.csv"))
    if not tables:
        doc.add(Missing("no code-size sweep", "Run `cnnlab notmnist ae-sweep --dims 8,16,32,64,128`"))
        return
    rows = _read_csv(tables[0])
    doc.add(Table(rows, caption="Dense autoencoder: code size against test loss and PSNR"))
    plot = tables[0].with_suffix(".png")
    if plot.is_file():
        doc.add(Figure(plot, "Test loss and PSNR against code size"))
    facts["sweep"] = [(int(r["code_dim"]), float(r["test_psnr"])) for r in rows]


def svm_section(doc: Document, svm_runs: list[Run], facts: dict[str, Any]) -> None:
    doc.add(Heading("SVM on codes against SVM on pixels", level=3))
    if not svm_runs:
        doc.add(Missing("no SVM run", "Run `cnnlab notmnist svm`"))
        return
    shown = newest(svm_runs)
    s = shown.summary
    doc.add(Table([{k: _fmt(v) for k, v in r.items()} for r in s["rows"]],
                  caption=f"Run `{shown.name}`: RBF SVM (standardised features, C and gamma cross-validated): "
                          f"{s['train_images']} "
                          f"train, {s['test_images']} test images"))
    facts["svm"] = {r["features"]: r for r in s["rows"]}
    facts["svm_test_images"] = s.get("test_images")


def denoise_section(doc: Document, dae_runs: list[Run], facts: dict[str, Any]) -> None:
    doc.add(Heading("Convolutional denoising autoencoder", level=3))
    if not dae_runs:
        doc.add(Missing("no denoising run", "Run `cnnlab notmnist denoise`"))
        return
    run = newest(dae_runs)
    s = run.summary
    facts.update(dae_summary=s, dae_run=run.name, dae_gain=s["psnr_gain_db"], dae_noisy_psnr=s["noisy_psnr"], dae_psnr=s["test_psnr"],
                 dae_code=s.get("code", ""), dae_code_values=s.get("code_values"),
                 dae_code_shape=s.get("code_shape"), dae_noise=s.get("noise"), dae_epochs=s["epochs"])
    if (run.path / "model_summary.txt").is_file():
        doc.add(Preformatted((run.path / "model_summary.txt").read_text(),
                             caption="Layer summary: every output shape (the 'diabolo'), input and output 1x28x28"))
    if (run.path / "figures" / "denoising.png").is_file():
        doc.add(Figure(run.path / "figures" / "denoising.png", "Rows: noisy input, denoised output, clean image"))
    doc.add(Table([
        {"Images": "noisy vs clean", "MSE": f"{s['noisy_mse']:.4f}", "PSNR dB": f"{s['noisy_psnr']:.2f}",
         "SSIM": f"{s.get('noisy_ssim', float('nan')):.3f}"},
        {"Images": "denoised vs clean", "MSE": f"{s['test_mse']:.4f}", "PSNR dB": f"{s['test_psnr']:.2f}",
         "SSIM": f"{s.get('test_ssim', float('nan')):.3f}"},
    ], caption=f"Run `{run.name}`: denoising on the test set, noise {s.get('noise')}, after {s['epochs']} epochs: "
               f"gain {s['psnr_gain_db']:+.2f} dB"))


def compression_answer(rows: list[dict[str, Any]], decoder_bytes: int) -> str:
    """Exercise 3 f) from the compression rows: the 8-bit code against each codec at the code's PSNR and
    SSIM, the verdict on bandwidth following which is smaller, and after how many images the decoder
    (shipped once) is paid back."""
    code = next((r for r in rows if r["method"].startswith("AE code 8-bit")), None)
    code = code or next((r for r in rows if r["method"].startswith("AE code")), None)  # tables of earlier versions
    raw = next((r for r in rows if r["method"].startswith("raw")), {"bytes_per_image": 784})
    if code is None:
        return "**f) Is the autoencoder a good compressor?** The compression table has no code row. " + NOT_MEASURED
    matched = [r for r in rows if " at the 8-bit code's " in r["method"]]
    if not matched:
        return ("**f) Is the autoencoder a good compressor?** This run's table was written by an earlier cnnlab, "
                "without codecs matched to the code's quality. " + NOT_MEASURED)
    text = (f"**f) Is the autoencoder a good compressor?** The code costs {code['bytes_per_image']:g} bytes "
            f"per image ({raw['bytes_per_image'] / code['bytes_per_image']:.1f}x fewer than raw pixels) and "
            f"reconstructs at {code['psnr_db']:.1f} dB PSNR, SSIM {code['ssim']:.3f} (the figure above shows what that "
            f"looks like). At the same quality: ")
    parts, smaller, larger = [], [], []
    for r in matched:
        if r["bytes_per_image"] is None:
            parts.append(f"{r['method']}: {r['note']}")
            continue
        parts.append(f"{r['method']} costs {r['bytes_per_image']:g} bytes ({r['note']})")
        if "below" in r["note"]:  # its best setting falls a little short of the code's quality: no verdict on it
            continue
        (larger if r["bytes_per_image"] > code["bytes_per_image"] else smaller).append(r)
    text += "; ".join(parts) + ". "
    if larger and not smaller:
        text += "By bandwidth the code wins against every codec that reaches its quality"
    elif smaller and not larger:
        text += "By bandwidth the codecs win: each is smaller at the code's quality"
    elif larger:
        text += ("By bandwidth it depends on the codec: the code is smaller than "
                 + ", ".join(r["method"] for r in larger) + " but larger than " + ", ".join(r["method"] for r in smaller))
    else:
        text += "No codec reached the code's quality, so bandwidth cannot be compared at equal quality"
    if larger and decoder_bytes:
        saving = min(r["bytes_per_image"] for r in larger) - code["bytes_per_image"]
        text += (f"; the decoder ({decoder_bytes:,} bytes, shipped once) is paid back after "
                 f"{decoder_bytes / saving:,.0f} images against the cheapest of those")
    return text + "."


def sweep_answer(sweep: list[tuple[int, float]]) -> str:
    """The code-size sweep in words: PSNR per code size and whether each doubling bought less."""
    sweep = sorted(sweep)
    text = "**Code size.** PSNR by code size: " + ", ".join(f"{d} values: {p:.1f} dB" for d, p in sweep)
    gains = [(b[0], b[1] - a[1]) for a, b in zip(sweep, sweep[1:])]
    if len(gains) < 2:
        return text + "."
    listed = ", ".join(f"{g:+.1f} dB to {d}" for d, g in gains)
    if all(g > 0 for _, g in gains) and all(g2 < g1 for (_, g1), (_, g2) in zip(gains, gains[1:])):
        return text + f"; each step buys less than the one before ({listed})."
    if all(g > 0 for _, g in gains):
        return text + f"; every step buys more PSNR, but not less each time ({listed})."
    return text + f"; not every step helps ({listed})."


def svm_answer(svm: dict[str, dict[str, Any]], test_images: int | None) -> str:
    """Exercise 3 g): the SVM on codes against pixels, the difference with its interval (Newcombe on the
    test images), worded "within noise" when the interval covers 0."""
    parts = [f"{k} ({v['dims']} dims): {100 * float(v['test_acc']):.1f}% test accuracy, fit {float(v['fit_s']):.1f} s"
             for k, v in svm.items()]
    text = "**g) SVM on the codes against SVM on pixels.** " + "; ".join(parts) + "."
    if "raw" in svm and "ae" in svm:
        ae, raw = float(svm["ae"]["test_acc"]), float(svm["raw"]["test_acc"])
        d = difference([ae], [raw], test_images, test_images)
        dims = int(svm["raw"]["dims"]) / max(int(svm["ae"]["dims"]), 1)
        speed = float(svm["raw"]["fit_s"]) / max(float(svm["ae"]["fit_s"]), 1e-9)
        how = d.verdict("more accurate than raw pixels", "less accurate than raw pixels")
        how = "as accurate as raw pixels, within noise" if how == "within noise" else how
        text += (f" The codes are {how} (codes minus pixels: {d.text()}), with {dims:.0f}x fewer dimensions and a "
                 f"fit {speed:.1f}x {'faster' if speed >= 1 else 'slower'}.")
    return text


def denoiser_answer(facts: dict[str, Any]) -> str:
    """Denoising b) from the run: the encoder output's size against the input's, then the PSNR change."""
    values, pixels = facts.get("dae_code_values"), 28 * 28
    if values:
        shape = "x".join(map(str, facts.get("dae_code_shape") or [])) or str(values)
        size = (f"Its encoder output is {shape} = {values:,} numbers per image, {values / pixels:.2f}x the "
                f"{pixels} input pixels")
        compresses = values < pixels
    else:
        size, compresses = facts.get("dae_code", "its code size was not recorded"), None
    answer = {True: "Yes, by size", False: "No", None: "Not known from this run"}[compresses]
    gain = facts["dae_gain"]
    effect = "improves" if gain > 0 else "does not improve"
    return (f"**Denoising b) Would this autoencoder compress the images?** {answer}. {size}. It "
            f"{effect} noisy inputs: PSNR {facts['dae_noisy_psnr']:.1f} dB noisy, {facts['dae_psnr']:.1f} dB "
            f"denoised ({gain:+.1f} dB).")


def _shape(values: Any) -> str:
    return "x".join(map(str, values)) if values else "?"


def dense_answers(s: dict[str, Any]) -> list[str]:
    """The sheet's dense-autoencoder steps a) to e), each from the run's summary."""
    code, pixels = s["code_dim"], 784
    hp = s.get("hyperparameters", {})
    where = ("between the 10 classes and the 784 pixels" if 10 < code < pixels
             else "outside the range between the 10 classes and the 784 pixels")
    same = s.get("input_shape") and s.get("input_shape") == s.get("output_shape")
    parts = [f"**a) Code size.** {code} values, {where}; the sweep below measures other sizes.",
             f"**b) Layers.** Input {_shape(s.get('input_shape'))} (784 values) -> dense {code} (ReLU) -> dense 784 "
             f"(sigmoid) -> output {_shape(s.get('output_shape'))}: "
             + ("the output has the input's shape." if same else "the shapes were not recorded by this run.")]
    if s.get("encoder_params") is not None:
        shared = s["encoder_params"] + s["decoder_params"] == s["params"]
        parts.append(f"**c) Models.** The encoder ({s['encoder_params']:,} parameters) and the decoder "
                     f"({s['decoder_params']:,}) are the autoencoder's two halves ({s['params']:,} parameters"
                     + (", the sum: the three models share one set of weights)." if shared else ")."))
    else:
        parts.append("**c) Models.** The encoder and the decoder are the autoencoder's two halves, sharing its "
                     "weights (this run did not record their parameter counts).")
    monitor = str(s.get("monitor", "test_loss")).replace("_", " ")
    parts.append(f"**d) Training.** {hp.get('loss', '?')} loss, Adam, batch {hp.get('batch_size', '?')}, "
                 f"{s['epochs']} epochs; the best epoch ({s['best_epoch']}) chosen on {monitor}"
                 + (": an optimistic test figure" if monitor.startswith("test") else "")
                 + f"; test MSE {s['test_mse']:.4f}, PSNR {s['test_psnr']:.2f} dB.")
    parts.append("**e) Visualisation.** The figure above: test letters on top, their reconstructions below, and "
                 "the codes as tiles.")
    return parts


def denoising_answers(facts: dict[str, Any]) -> list[str]:
    """The sheet's denoising steps a) to e), each from the run's summary."""
    s = facts["dae_summary"]
    hp = s.get("hyperparameters", {})
    same = s.get("input_shape") and s.get("input_shape") == s.get("output_shape")
    code = _shape(s.get("code_shape"))
    return [
        f"**Denoising a) Shapes.** The layer summary above: input {_shape(s.get('input_shape'))}, code {code}, output "
        f"{_shape(s.get('output_shape'))}: " + ("the output has the input's shape; the feature maps shrink to the code "
                                                "and grow back (the diabolo)." if same else "shapes not recorded."),
        denoiser_answer(facts),
        f"**Denoising c) Noise.** {s.get('noise')}: fresh noise on every training batch, fixed noise (its own seed) on "
        f"the test images, so every run is scored on the same noisy letters.",
        f"**Denoising d) Training.** {hp.get('loss', '?')} loss, batch {hp.get('batch_size', '?')}, {s['epochs']} "
        f"epochs, best epoch chosen on {str(s.get('monitor', 'test_loss')).replace('_', ' ')}.",
        f"**Denoising e) Visualisation.** The figure above (noisy, denoised, clean) and the table: PSNR "
        f"{s['noisy_psnr']:.1f} dB noisy, {s['test_psnr']:.1f} dB denoised.",
    ]


def answers(doc: Document, facts: dict[str, Any]) -> None:
    """Every question of the sheet's Exercise 3, in its order, each from this lab's runs."""
    doc.add(Heading("Answers to the exercise's questions", level=3))
    if "ae_summary" in facts:
        for text in dense_answers(facts["ae_summary"]):
            doc.add(Paragraph(text))
    if "compression" in facts:
        doc.add(Paragraph(compression_answer(facts["compression"], facts.get("ae_decoder_bytes") or 0)))
    if "svm" in facts:
        doc.add(Paragraph(svm_answer(facts["svm"], facts.get("svm_test_images"))))
    if "sweep" in facts:
        doc.add(Paragraph(sweep_answer(facts["sweep"])))
    if "dae_summary" in facts:
        for text in denoising_answers(facts):
            doc.add(Paragraph(text))


def chosen_probes(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (extractor, budget), the probe with the higher val accuracy (test then read once)."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["features"], str(r["budget"]))
        if key not in best or float(r["val_acc"]) > float(best[key]["val_acc"]):
            best[key] = r
    return best


def feature_pivot(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per extractor, one column per label budget: the chosen probe's test accuracy [95% interval]."""
    best = chosen_probes(rows)
    budgets = list(dict.fromkeys(str(r["budget"]) for r in rows))
    out = []
    for name in dict.fromkeys(r["features"] for r in rows):
        first = next(r for r in rows if r["features"] == name)
        probed = first.get("dims_probed", first["dims"])
        dims = first["dims"] if probed == first["dims"] else f"{first['dims']} (PCA to {probed})"
        row: dict[str, Any] = {"Features": name, "Dims": dims}
        for b in budgets:
            r = best.get((name, b))
            row[f"{b} labels/class" if b != "all" else "all labels"] = (
                "-" if r is None else f"{100 * float(r['test_acc']):.1f} [{100 * float(r['test_low']):.1f}, "
                                      f"{100 * float(r['test_high']):.1f}] ({'LR' if r['probe'] == 'logreg' else 'SVM'})")
        out.append(row)
    return out


def features_section(doc: Document, ssl_runs: list[Run], feature_runs: list[Run], facts: dict[str, Any]) -> None:
    doc.add(Heading("Self-supervised, autoencoder and ImageNet features for few labels", level=3))
    if ssl_runs:
        run = newest(ssl_runs)
        s = run.summary
        facts["ssl"] = s
        doc.add(Paragraph(f"Run `{run.name}`: {s['method']} on {s['train_images']} training letters without their "
                          f"labels, {s['epochs']} epochs, batch {s['batch_size']}, temperature {s['temperature']:g}; "
                          f"views: {s['augmentations']}. The loss went from {s['loss_first']:.3f} to "
                          f"{s['loss_last']:.3f}."))
    else:
        doc.add(Missing("no self-supervised run", "Run `cnnlab notmnist ssl`"))
    if not feature_runs:
        doc.add(Missing("no feature comparison", "Run `cnnlab notmnist features`"))
        return
    run = newest(feature_runs)
    s = run.summary
    facts["features"] = s
    doc.add(Table(feature_pivot(s["rows"]), caption=f"Run `{run.name}`: test accuracy % [95% interval] of the probe "
                                                    f"(logistic regression or RBF SVM, C and probe chosen on "
                                                    f"{s['val_images']} val letters), {s['test_images']} test letters"))
    for name, caption in (("features.png", "Test accuracy against labelled images per class (log axis)"),
                          ("tsne.png", "t-SNE maps of each feature space on test letters, coloured by class")):
        if (run.path / name).is_file():
            doc.add(Figure(run.path / name, caption))
    doc.add(Paragraph("Where each feature comes from: " + "; ".join(f"{k}: {v}" for k, v in s.get("origins", {}).items())
                      + "."))


def section(doc: Document, runs_dir: Path, figures_dir: Path) -> dict[str, Any]:
    doc.add(Heading("Exercise 3: autoencoders on notMNIST", anchor="exercise-3"))
    runs = load_runs(runs_dir, "notmnist")
    add_diverged(doc, runs)
    runs = [r for r in runs if r.summary.get("status") != "diverged"]
    if not runs:
        doc.add(Missing("no notMNIST runs in " + str(runs_dir / "notmnist"), HOW))
        return {}
    ae_runs = [r for r in runs if r.summary.get("model") == "dense-ae" and "test_psnr" in r.summary]
    svm_runs = [r for r in runs if r.summary.get("kind") == "svm"]
    dae_runs = [r for r in runs if "psnr_gain_db" in r.summary]
    ssl_runs = [r for r in runs if r.summary.get("kind") == "ssl"]
    feature_runs = [r for r in runs if r.summary.get("kind") == "features"]
    facts: dict[str, Any] = {}
    dense_section(doc, ae_runs, facts)
    sweep_section(doc, runs_dir, facts)
    svm_section(doc, svm_runs, facts)
    denoise_section(doc, dae_runs, facts)
    answers(doc, facts)
    features_section(doc, ssl_runs, feature_runs, facts)
    return facts
