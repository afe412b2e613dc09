#!/usr/bin/env python3
"""Structure figures of the molw2s package: modules, lines, the longest functions.

Usage: python tools/code_stats.py [PACKAGE_DIR] [--top N]
Import circles and upward imports come from ``python ../shared/tools/import_graph.py``;
repeated code from the ``duplicates`` tool. Recorded in docs/architecture.md.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def functions(path: Path) -> list[tuple[int, str]]:
    """(length in lines, qualified name) of every function and method in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                out.append((length, f"{prefix}{child.name}"))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default="molw2s")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    root = Path(args.package)
    files = sorted(root.rglob("*.py"))
    lines = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in files)
    found = [(n, f"{f.relative_to(root.parent)}:{name}") for f in files for n, name in functions(f)]
    found.sort(reverse=True)
    print(f"{len(files)} modules, {lines} lines, {len(found)} functions")
    print(f"functions over 50 lines: {sum(1 for n, _ in found if n > 50)}")
    for n, name in found[: args.top]:
        print(f"  {n:4d}  {name}")


if __name__ == "__main__":
    main()
