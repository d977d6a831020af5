"""One table, three formats: Markdown for reading, CSV for tools, LaTeX for the written report."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from cnnlab import files
from cnnlab.stats import mean_std, wilson_interval


def cell_text(value: Any) -> str:
    """How a value reads in every format: None as '-', floats to 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no rows_\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = (cell_text(row.get(c)).replace("|", "\\|").replace("\n", " ") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _latex_escape(text: str) -> str:
    # Backslash and dollar first: the replacements below introduce both.
    for a, b in (("\\", r"\textbackslash "), ("$", r"\$"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#"), ("±", r"$\pm$"), ("→", r"$\to$"), ("×", r"$\times$")):
        text = text.replace(a, b)
    return text


def to_latex(rows: list[dict[str, Any]], caption: str = "") -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    spec = "l" * len(columns)
    body = [" & ".join(_latex_escape(c) for c in columns) + r" \\ \hline"]
    for row in rows:
        body.append(" & ".join(_latex_escape(cell_text(row.get(c))) for c in columns) + r" \\")
    cap = f"\\caption{{{_latex_escape(caption)}}}\n" if caption else ""
    return ("\\begin{table}[ht]\n\\centering\n\\small\n" + f"\\begin{{tabular}}{{{spec}}}\n\\hline\n"
            + "\n".join(body) + "\n\\hline\n\\end{tabular}\n" + cap + "\\end{table}\n")


def write_table(rows: list[dict[str, Any]], path_stem: str | Path, caption: str = "") -> list[Path]:
    """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.tex``; returns their paths."""
    stem = Path(path_stem)
    files.make_dirs(stem.parent)
    md, csv_path, tex = stem.with_suffix(".md"), stem.with_suffix(".csv"), stem.with_suffix(".tex")
    files.write_text(md, (f"{caption}\n\n" if caption else "") + to_markdown(rows))
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: cell_text(v) if v is None else v for k, v in r.items()} for r in rows)
    files.write_text(csv_path, out.getvalue())
    files.write_text(tex, to_latex(rows, caption))
    return [md, csv_path, tex]


def fmt_pct(values: list[float]) -> str:
    """Accuracies (fractions) as percent with one decimal, over several seeds as 'MEAN ± STD'."""
    mean, std = mean_std([100 * v for v in values])
    return f"{mean:.1f} ± {std:.1f}" if len(values) > 1 else f"{mean:.1f}"


def fmt_acc(values: list[float], n: int | None) -> str:
    """Test accuracies (fractions) with their uncertainty: one run on ``n`` images as 'ACC [LOW, HIGH]'
    (95% Wilson interval); several seeds as mean ± sample std ('MEAN ± STD'); no ``n``: the value alone."""
    if len(values) != 1 or not n:
        return fmt_pct(values)
    low, high = wilson_interval(values[0], n)
    return f"{100 * values[0]:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
