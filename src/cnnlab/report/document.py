"""A report as a list of blocks (headings, prose, tables, figures, preformatted text), rendered twice:
to Markdown (figures linked beside it) and to one self-contained HTML file (figures embedded), so the
two never disagree."""

from __future__ import annotations

import base64
import html
import mimetypes
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab import files
from cnnlab.viz import tables


@dataclass
class Heading:
    text: str
    level: int = 2
    anchor: str = ""


@dataclass
class Paragraph:
    text: str  # may hold **bold** and `code`


@dataclass
class Table:
    rows: list[dict[str, Any]]
    caption: str = ""


@dataclass
class Figure:
    path: Path
    caption: str = ""
    width: str = "auto"  # natural size, capped at the page width by the stylesheet


@dataclass
class Preformatted:
    text: str
    caption: str = ""


@dataclass
class Missing:
    """A part of the report whose runs do not exist: said plainly, never invented."""
    what: str
    how: str


Block = Heading | Paragraph | Table | Figure | Preformatted | Missing


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> "Document":
        self.blocks.extend(blocks)
        return self


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---- Markdown ----------------------------------------------------------------------------------------


def to_markdown(doc: Document, out_dir: Path) -> str:
    """Markdown; figures are copied into ``out_dir/figures`` and linked relatively."""
    figures = out_dir / "figures"
    lines = [f"# {doc.title}", ""]
    for i, block in enumerate(doc.blocks):
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"*{block.caption}*", ""]
            if block.rows:
                lines.append(tables.to_markdown(block.rows))
            lines.append("")
        elif isinstance(block, Figure):
            files.make_dirs(figures)
            name = f"{i:03d}-{block.path.parent.name}-{block.path.name}"
            shutil.copyfile(block.path, figures / name)
            lines += [f"![{block.caption}](figures/{name})", "", f"*{block.caption}*" if block.caption else "", ""]
        elif isinstance(block, Preformatted):
            if block.caption:
                lines += [f"*{block.caption}*", ""]
            lines += ["```", block.text.rstrip(), "```", ""]
        elif isinstance(block, Missing):
            lines += [f"> **Missing:** {block.what}. {block.how}", ""]
    return "\n".join(lines)


# ---- HTML --------------------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.5}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #ccc;margin-top:2.5rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}figcaption,.caption{color:#555;font-size:.9rem}
pre{background:#f7f7f7;padding:.8rem;overflow-x:auto;font-size:.75rem}
.missing{background:#fff4e5;border-left:4px solid #f0a020;padding:.5rem 1rem}
nav ul{columns:2}
"""

# Counts what actually rendered, so a headless browser (and its test) can check the page.
CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  document.body.dataset.images = imgs.length;
  document.body.dataset.imagesRendered = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.dataset.tables = document.querySelectorAll('table').length;
  document.body.dataset.sections = document.querySelectorAll('section').length;
});
"""


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def to_html(doc: Document) -> str:
    body: list[str] = []
    toc: list[str] = []
    open_section = False
    for block in doc.blocks:
        if isinstance(block, Heading):
            anchor = block.anchor or slug(block.text)
            if block.level == 2:
                if open_section:
                    body.append("</section>")
                body.append(f'<section id="{anchor}">')
                open_section = True
                toc.append(f'<li><a href="#{anchor}">{html.escape(block.text)}</a></li>')
            body.append(f"<h{block.level} id=\"{anchor}-h\">{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Table):
            cap = f"<caption class=caption>{_inline(block.caption)}</caption>" if block.caption else ""
            if block.rows:
                cols = list(block.rows[0])
                head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
                rows = "".join("<tr>" + "".join(f"<td>{html.escape(tables.cell_text(r.get(c)))}</td>"
                                                for c in cols) + "</tr>" for r in block.rows)
                body.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Figure):
            cap = f"<figcaption>{_inline(block.caption)}</figcaption>" if block.caption else ""
            body.append(f'<figure><img src="{_data_uri(block.path)}" alt="{html.escape(block.caption)}" '
                        f'style="width:{block.width}">{cap}</figure>')
        elif isinstance(block, Preformatted):
            cap = f'<p class="caption">{_inline(block.caption)}</p>' if block.caption else ""
            body.append(f"{cap}<pre>{html.escape(block.text)}</pre>")
        elif isinstance(block, Missing):
            body.append(f'<p class="missing"><strong>Missing:</strong> {_inline(block.what)}. {_inline(block.how)}</p>')
    if open_section:
        body.append("</section>")
    nav = f"<nav><ul>{''.join(toc)}</ul></nav>" if toc else ""
    return (f"<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{html.escape(doc.title)}</title>"
            f"<style>{STYLE}</style><script>{CHECK_SCRIPT}</script></head>\n<body><h1>{html.escape(doc.title)}</h1>"
            f"{nav}\n" + "\n".join(body) + "\n</body></html>\n")


def write(doc: Document, out_dir: Path) -> tuple[Path, Path]:
    files.make_dirs(out_dir)
    md = out_dir / "report.md"
    files.write_text(md, to_markdown(doc, out_dir))
    page = out_dir / "index.html"
    files.write_text(page, to_html(doc))
    return page, md
