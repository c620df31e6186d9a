"""A report as a list of blocks (headings, paragraphs, tables, figures), rendered to Markdown
and to one self-contained HTML page. The comparison report (``sim.report.sections``) and the
validate loop's report (``validate.report``) are both built of these blocks; what they say is
theirs.

>>> blocks = [Heading("Result"), Table(["policy", "saving"], [["planned", "25.0%"]])]
>>> print(to_markdown(blocks))
# Result
<BLANKLINE>
| policy | saving |
| --- | --- |
| planned | 25.0% |
<BLANKLINE>
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    name: str
    caption: str


Block = Heading | Paragraph | Table | Figure


def to_markdown(blocks: list[Block], figures: str = "figures/") -> str:
    """GitHub-flavoured Markdown; figures link to ``{figures}NAME.png``."""
    def table(block: Table) -> str:
        lines = [_md_row(block.headers), _md_row(["---"] * len(block.headers))]
        return "\n".join(lines + [_md_row(row) for row in block.rows]) + "\n"

    return "\n".join(_render(blocks, {
        Heading: lambda b: f"{'#' * b.level} {b.text}\n",
        Paragraph: lambda b: f"{b.text}\n",
        Table: table,
        Figure: lambda b: f"![{b.caption}]({figures}{b.name}.png)\n\n*{b.caption}*\n",
    }))


def _render(blocks: list[Block], renderers: dict[type, Any]) -> list[str]:
    return [renderers[type(block)](block) for block in blocks]


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}img{max-width:100%}figure{margin:1.5em 0}
figcaption{font-style:italic;color:#555}code{font-size:.85em}"""


def to_html(blocks: list[Block], images: dict[str, bytes]) -> str:
    """One self-contained HTML page: every figure embedded as a base64 PNG."""
    def table(block: Table) -> str:
        head = "".join(f"<th>{_inline(h)}</th>" for h in block.headers)
        rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"

    def figure(block: Figure) -> str:
        data = base64.b64encode(images[block.name]).decode()
        return (f'<figure><img alt="{html.escape(block.name)}" src="data:image/png;base64,'
                f'{data}"><figcaption>{_inline(block.caption)}</figcaption></figure>')

    body = _render(blocks, {
        Heading: lambda b: f"<h{b.level}>{_inline(b.text)}</h{b.level}>",
        Paragraph: lambda b: f"<p>{_inline(b.text)}</p>",
        Table: table,
        Figure: figure,
    })
    title = next((b.text for b in blocks if isinstance(b, Heading)), "report")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>'
            f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _inline(text: str) -> str:
    """The little Markdown the report uses inline: **bold** and `code`."""
    parts = html.escape(text).split("`")
    for i in range(1, len(parts), 2):
        parts[i] = f"<code>{parts[i]}</code>"
    bolded = "".join(parts).split("**")
    for i in range(1, len(bolded), 2):
        bolded[i] = f"<strong>{bolded[i]}</strong>"
    return "".join(bolded)
