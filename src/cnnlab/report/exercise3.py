"""Report section for Exercise 3: the dense autoencoder's reconstructions and codes, compression by loss
and by bandwidth, the code-size sweep, SVMs on codes vs pixels, the denoising autoencoder, and the
exercise's questions answered from those numbers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from cnnlab.report.document import Document, Figure, Heading, Missing, Paragraph, Preformatted, Table
from cnnlab.report.runs import add_diverged, Run, load_runs, newest

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
                 ae_epochs=s["epochs"], ae_decoder_bytes=s.get("decoder_bytes_float32"))
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
        doc.add(Table([{k: _fmt(v) for k, v in r.items()} for r in rows],
                      caption=f"Compression by loss and by bandwidth, first {s.get('compression_images')} test images; "
                              f"the decoder ({s.get('decoder_bytes_float32', 0):,} bytes as float32) is shipped once"))
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


def denoise_section(doc: Document, dae_runs: list[Run], facts: dict[str, Any]) -> None:
    doc.add(Heading("Convolutional denoising autoencoder", level=3))
    if not dae_runs:
        doc.add(Missing("no denoising run", "Run `cnnlab notmnist denoise`"))
        return
    run = newest(dae_runs)
    s = run.summary
    facts.update(dae_gain=s["psnr_gain_db"], dae_noisy_psnr=s["noisy_psnr"], dae_psnr=s["test_psnr"],
                 dae_code=s.get("code", ""), dae_noise=s.get("noise"), dae_epochs=s["epochs"])
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


def answers(doc: Document, facts: dict[str, Any]) -> None:
    doc.add(Heading("Answers to the exercise's questions", level=3))
    if "compression" in facts:
        rows = facts["compression"]
        raw = rows[0]
        codes = [r for r in rows if r["method"].startswith("AE code")]
        codecs = [r for r in rows if r["method"].startswith(("PNG ", "JPEG")) and r["note"] != "lossless"]
        doc.add(Paragraph(
            "**f) Is the autoencoder a good compressor?** By bandwidth, yes: " + "; ".join(
                f"{r['method']} costs {r['bytes_per_image']:g} bytes per image at {r['psnr_db']:.1f} dB"
                for r in codes) + f", against {raw['bytes_per_image']:g} bytes for raw pixels. By loss, less so: "
            f"{facts['ae_psnr']:.1f} dB is visibly blurry (figure above), and general-purpose codecs at a similar "
            f"PSNR cost " + "; ".join(f"{r['bytes_per_image']:g} bytes ({r['method']}, {r['psnr_db']:.1f} dB)"
                                      for r in codecs) +
            f". The decoder ({facts.get('ae_decoder_bytes') or 0:,} bytes) is shipped once, so the autoencoder "
            f"pays off only over many images of the kind it was trained on."))
    if "sweep" in facts:
        sweep = sorted(facts["sweep"])
        doc.add(Paragraph("**Code size.** PSNR grows with the code: " + ", ".join(
            f"{d} values: {p:.1f} dB" for d, p in sweep) + "; each doubling buys less than the one before."))
    if "svm" in facts:
        svm = facts["svm"]
        parts = [f"{k} ({v['dims']} dims): {100 * float(v['test_acc']):.1f}% test accuracy, fit {float(v['fit_s']):.1f} s"
                 for k, v in svm.items()]
        verdict = ""
        if "raw" in svm and "ae" in svm:
            d = 100 * (float(svm["ae"]["test_acc"]) - float(svm["raw"]["test_acc"]))
            speed = float(svm["raw"]["fit_s"]) / max(float(svm["ae"]["fit_s"]), 1e-9)
            verdict = (f" The codes give {abs(d):.1f} points {'less' if d < 0 else 'more'} accuracy than raw pixels "
                       f"with {int(svm['raw']['dims']) // max(int(svm['ae']['dims']), 1)}x fewer dimensions and a "
                       f"{speed:.0f}x faster fit: the code keeps most of what separates the letters.")
        doc.add(Paragraph("**g) SVM on the codes against SVM on pixels.** " + "; ".join(parts) + "." + verdict))
    if "dae_gain" in facts:
        doc.add(Paragraph(
            f"**Denoising b) Would this autoencoder compress the images?** No. {facts['dae_code']}. Its "
            f"encoder keeps 128 feature maps of 7x7, eight times more numbers than the 784 input pixels: it is "
            f"built to remove noise (the PSNR rises from {facts['dae_noisy_psnr']:.1f} dB to {facts['dae_psnr']:.1f} dB, "
            f"{facts['dae_gain']:+.1f} dB), not to shrink the data."))


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
    facts: dict[str, Any] = {}
    dense_section(doc, ae_runs, facts)
    sweep_section(doc, runs_dir, facts)
    svm_section(doc, svm_runs, facts)
    denoise_section(doc, dae_runs, facts)
    answers(doc, facts)
    return facts
