#!/usr/bin/env python3
"""Structure figures of the molw2s package, as the Markdown table of docs/architecture.md.

Usage: python tools/code_stats.py [PACKAGE_DIR] [--top N]

Prints, for the working tree at its git commit: modules, lines, functions and how many are
over 50 lines, public functions with a docstring, the longest functions; import circles
and upward imports (from ``../shared/tools/import_graph.py`` when it is there) and the
number of repeated-code pairs (from the ``duplicates`` tool when it is on PATH). A figure
whose tool is missing reads "n/a" with the reason.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPORT_GRAPH = REPO.parent / "shared" / "tools" / "import_graph.py"
LONG = 50  # lines: a function longer than this is counted as long


@dataclass(frozen=True)
class Function:
    """One function or method: its length in lines, qualified name, whether it is public (a
    module-level function or a method without a leading underscore) and documented."""

    length: int
    name: str
    public: bool
    documented: bool


def functions(path: Path) -> list[Function]:
    """Every function and method in ``path`` (nested ones too), qualified by class and function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[Function] = []

    def visit(node: ast.AST, prefix: str, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                public = not nested and not child.name.startswith("_")
                out.append(Function(length, f"{prefix}{child.name}", public, ast.get_docstring(child) is not None))
                visit(child, f"{prefix}{child.name}.", nested=True)
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.", nested)

    visit(tree, "", nested=False)
    return out


def import_figures(package: Path) -> tuple[str, str]:
    """(import circles, upward imports) as the shared import checker counts them."""
    if not IMPORT_GRAPH.is_file():
        return (f"n/a ({IMPORT_GRAPH} not found)",) * 2
    proc = subprocess.run(
        [sys.executable, str(IMPORT_GRAPH), str(package)], capture_output=True, text=True, check=False
    )
    lines = proc.stdout.splitlines()
    circles = [line.removeprefix("circle: ") for line in lines if line.startswith("circle: ")]
    upward = [line.removeprefix("upward import: ") for line in lines if line.startswith("upward import: ")]
    return _listed(circles), _listed(upward)


def _listed(items: list[str]) -> str:
    return f"{len(items)}" + (f" ({'; '.join(f'`{i}`' for i in items)})" if items else "")


def duplicate_pairs(repo: Path) -> str:
    """How many pairs of places share six or more lines (``duplicates``, whole repository)."""
    tool = shutil.which("duplicates")
    if tool is None:
        return "n/a (`duplicates` not on PATH)"
    proc = subprocess.run([tool, "--most", "1"], cwd=repo, capture_output=True, text=True, check=False)
    first = proc.stdout.splitlines()[0] if proc.stdout else ""
    if first.startswith("no duplicates"):
        return "0"
    found = re.match(r"(\d+) pairs?", first)
    if found is None:
        return f"n/a (unexpected output: {first!r})"
    boilerplate = re.search(r"(\d+) of those marked boilerplate", first)
    return found.group(1) + (f" ({boilerplate.group(1)} boilerplate)" if boilerplate else "")


def commit(repo: Path) -> str:
    """The short hash of HEAD, with ``+changes`` when the working tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True)
    if head.returncode:
        return "no git commit"
    return head.stdout.strip() + (" +changes" if dirty.stdout.strip() else "")


def table(package: Path, top: int) -> str:
    """The Markdown table of structure figures and the list of the ``top`` longest functions."""
    files = sorted(package.rglob("*.py"))
    lines = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in files)
    found = [(fn, f"{f.relative_to(package.parent)}:{fn.name}") for f in files for fn in functions(f)]
    found.sort(key=lambda item: (-item[0].length, item[1]))
    public = [fn for fn, _ in found if fn.public]
    circles, upward = import_figures(package)
    rows = [
        (f"modules in `{package.name}/`", f"{len(files)}"),
        (f"lines in `{package.name}/`", f"{lines:,}"),
        (f"functions / over {LONG} lines", f"{len(found)} / {sum(1 for fn, _ in found if fn.length > LONG)}"),
        ("public functions with a docstring", f"{sum(fn.documented for fn in public)} of {len(public)}"),
        ("import circles", circles),
        ("upward imports", upward),
        ("`duplicates` pairs (whole repository)", duplicate_pairs(package.resolve().parent)),
    ]
    out = [f"| figure | {commit(package.resolve().parent)} |", "|---|---|"]
    out += [f"| {name} | {value} |" for name, value in rows]
    longest = ", ".join(f"`{name}` {fn.length}" for fn, name in found[:top])
    out += ["", f"Longest functions: {longest}."]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default=str(REPO / "molw2s"))
    parser.add_argument("--top", type=int, default=6, help="how many of the longest functions to name")
    args = parser.parse_args()
    print(table(Path(args.package), args.top))


if __name__ == "__main__":
    main()
