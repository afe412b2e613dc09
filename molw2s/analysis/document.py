"""A tiny document model rendered to both Markdown and HTML, so the report is written
once and the two formats cannot drift apart."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import pandas as pd

#: one block of a document: its kind and its payload
Block: TypeAlias = (
    tuple[Literal["heading"], tuple[int, str]]
    | tuple[Literal["paragraph"], str]
    | tuple[Literal["table"], tuple[pd.DataFrame, str]]
    | tuple[Literal["image"], tuple[str, str]]
)


@dataclass
class Document:
    """An ordered list of blocks: headings, paragraphs, tables and images."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        """Add a section heading (level 2 or deeper; level 1 is the title)."""
        self.blocks.append(("heading", (level, text)))

    def paragraph(self, text: str) -> None:
        """Add a paragraph of plain text (inline `code` and **bold** kept in Markdown)."""
        self.blocks.append(("paragraph", text))

    def table(self, frame: pd.DataFrame, floatfmt: str = "{:.3g}") -> None:
        """Add a table; floats formatted with ``floatfmt``."""
        self.blocks.append(("table", (frame, floatfmt)))

    def image(self, path: str, caption: str) -> None:
        """Add an image by a path relative to the report."""
        self.blocks.append(("image", (path, caption)))

    def to_markdown(self) -> str:
        """Render as GitHub-flavoured Markdown."""
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            if block[0] == "heading":
                level, text = block[1]
                out += ["#" * level + " " + text, ""]
            elif block[0] == "paragraph":
                out += [str(block[1]), ""]
            elif block[0] == "table":
                frame, fmt = block[1]
                out += [markdown_table(frame, fmt), ""]
            elif block[0] == "image":
                path, caption = block[1]
                out += [f"![{caption}]({path})", "", f"*{caption}*", ""]
        return "\n".join(out)

    def to_html(self) -> str:
        """Render as a standalone HTML page."""
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        for block in self.blocks:
            if block[0] == "heading":
                level, text = block[1]
                body.append(f"<h{level}>{html.escape(text)}</h{level}>")
            elif block[0] == "paragraph":
                body.append(f"<p>{html.escape(str(block[1]))}</p>")
            elif block[0] == "table":
                frame, fmt = block[1]
                head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
                rows = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                    for row in _formatted(frame, fmt)
                )
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif block[0] == "image":
                path, caption = block[1]
                body.append(
                    f'<figure><img src="{html.escape(path)}" alt="{html.escape(caption)}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
            "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}"
            "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
            "img{max-width:100%}figcaption{font-style:italic;font-size:0.9em}"
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
        )


def markdown_table(frame: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    """``frame`` as a GitHub-flavoured Markdown table, floats formatted with ``floatfmt``."""
    lines = ["| " + " | ".join(_cell(str(c)) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in _formatted(frame, floatfmt)]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """A table cell's text with its pipes escaped (``weak_s|layer=0`` would split the row)."""
    return text.replace("|", "\\|")


def _formatted(frame: pd.DataFrame, fmt: str) -> list[list[str]]:
    rows = []
    for record in frame.itertuples(index=False):
        rows.append([fmt.format(v) if isinstance(v, float) else str(v) for v in record])
    return rows
