"""Numbers come from runs: no measured result is typed into code, help texts, docstrings or presets.
(Thresholds that define behaviour are settings, not results; benchmarks print what they measure.)"""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "cnnlab"

# What a typed-in measurement looks like: a figure with a unit of quality or time, or the word measured
# beside a figure. f-strings are computed, so they are left out.
MEASURED = re.compile(r"\d+(\.\d+)?\s?dB\b|\d+(\.\d+)?(-\d+(\.\d+)?)?x (faster|slower|longer)|measured[^\n]*\d"
                      r"|\d+(\.\d+)? ?(min|minutes) in all|\d+(\.\d+)?% ?->")


def typed_results() -> list[str]:
    found = []
    for path in [*SRC.rglob("*.py"), *SRC.rglob("*.yaml")]:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\bf\"|\bf'", line):
                continue
            if MEASURED.search(line):
                found.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    return found


def test_no_measured_result_is_typed_into_the_package():
    assert typed_results() == []


def test_the_scan_finds_a_typed_result(tmp_path, monkeypatch):
    """The scan itself works: a typed-in result in a docstring is found."""
    fake = tmp_path / "cnnlab"
    fake.mkdir()
    (fake / "x.py").write_text('"""Reaches 16.1 dB after 50 epochs."""\nBEST = 1  # measured 3x faster\n')
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert len(typed_results()) == 2
