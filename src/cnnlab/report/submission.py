"""The submission the lab sheet asks for ("Zip with report and iPython notebook"): ``submission.zip`` beside
the report, holding the report as HTML, Markdown and PDF and the lab's three notebooks executed with their
outputs saved.

    reports/lab/submission.zip
        report.html  report.md  figures/  report.pdf (printed by headless Chromium, when there is one)
        notebooks/ex1_non_sequential.ipynb  ex2_transfer_learning.ipynb  ex3_autoencoders.ipynb
        README.txt   what is inside, and what is missing and why

The notebooks run their own short trainings into their own runs folder (never the lab's), with
``settings`` passed to them as environment variables (``CNNLAB_NB_EPOCHS``, ``CNNLAB_NB_LIMIT``...).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cnnlab import files

NOTEBOOKS = ("ex1_non_sequential", "ex2_transfer_learning", "ex3_autoencoders")
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def checkout_notebooks() -> Path:
    """``notebooks/`` of the cnnlab source checkout (an editable install); it does not ship in the wheel."""
    return Path(__file__).resolve().parents[3] / "notebooks"


def print_pdf(html: Path, pdf: Path, timeout_s: int = 180) -> str:
    """Print ``html`` to ``pdf`` with headless Chromium; returns "" or why no PDF was printed."""
    browser = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    if browser is None:
        return "no headless Chromium found (install Debian's chromium)"
    profile = pdf.parent / ".chromium-profile"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-pdf-header-footer", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
             f"--print-to-pdf={pdf}", html.resolve().as_uri()]
    try:
        subprocess.run(flags, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return f"Chromium did not finish printing within {timeout_s} s"
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return "" if pdf.is_file() and pdf.stat().st_size > 0 else "Chromium printed no PDF"


def execute_notebook(source: Path, out: Path, workdir: Path, env: dict[str, str], timeout_s: int = 3600) -> str:
    """Execute ``source`` top to bottom in ``workdir`` (a fresh kernel, ``env`` set) and save it with its
    outputs to ``out``; returns "" or the error that stopped it (the notebook is saved up to there)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(source, as_version=4)
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel is a child process: it inherits this environment
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
        problem = ""
    except CellExecutionError as e:
        problem = str(e).strip().splitlines()[-1][:300]
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    files.write_text(out, nbformat.writes(nb))
    return problem


def write_submission(report_dir: Path, *, notebooks: Path | None = None, settings: dict[str, str] | None = None,
                     execute: bool = True) -> Path:
    """``report_dir/submission.zip`` from the report already built in ``report_dir`` (``index.html``,
    ``report.md``, ``figures/``) and the notebooks of ``notebooks`` (default: the checkout's), executed
    unless ``execute`` is off. Returns the zip's path; ``README.txt`` inside says what is missing and why."""
    report_dir = Path(report_dir)
    staging = report_dir / "submission"
    shutil.rmtree(staging, ignore_errors=True)
    files.make_dirs(staging / "notebooks")
    notes = []
    shutil.copy(report_dir / "index.html", staging / "report.html")
    shutil.copy(report_dir / "report.md", staging / "report.md")
    if (report_dir / "figures").is_dir():
        shutil.copytree(report_dir / "figures", staging / "figures")
    problem = print_pdf(staging / "report.html", staging / "report.pdf")
    notes.append(f"report.pdf: {problem}" if problem else "report.pdf: printed from report.html by headless Chromium")
    folder = notebooks or checkout_notebooks()
    workdir = report_dir / "notebook-runs"  # the notebooks' own runs, apart from the lab's
    files.make_dirs(workdir)
    env = {"CNNLAB_RUNS": str((workdir / "runs").resolve()), **(settings or {})}
    for name in NOTEBOOKS:
        source = folder / f"{name}.ipynb"
        if not source.is_file():
            notes.append(f"notebooks/{name}.ipynb: missing ({source} not found; they ship with the cnnlab checkout)")
            continue
        if not execute:
            shutil.copy(source, staging / "notebooks" / source.name)
            notes.append(f"notebooks/{name}.ipynb: not executed (asked not to)")
            continue
        print(f"cnnlab: executing {source.name} (its own short runs, in {workdir})", file=sys.stderr, flush=True)
        started = time.perf_counter()
        problem = execute_notebook(source, staging / "notebooks" / source.name, workdir, env)
        took = time.perf_counter() - started
        notes.append(f"notebooks/{name}.ipynb: " + (f"stopped by an error: {problem}" if problem
                                                     else f"executed top to bottom in {took:.0f} s, outputs saved"))
    files.write_text(staging / "README.txt", "cnnlab lab submission\n\n" + "\n".join(notes) + "\n")
    zip_path = Path(shutil.make_archive(str(report_dir / "submission"), "zip", root_dir=staging))
    shutil.rmtree(staging, ignore_errors=True)
    return zip_path
