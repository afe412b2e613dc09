"""The repository's structure: the specification the code cites is present and current,
every cited section exists, and imports point down the layers without circles."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
THEORY = REPO_ROOT / "docs" / "theory.md"


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to anything but empty, 0 or false
    (``.ci/run`` sets it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _shared_file(relative: str, root: Path = SHARED) -> Path:
    """``root/relative``; when it is missing, a failure in CI (its checks must run there)
    and a skip naming the file and the reason elsewhere."""
    path = root / relative
    if not path.is_file():
        if in_ci():
            pytest.fail(f"CI needs {path} (the shared specification and tools beside the clone); it is missing")
        pytest.skip(f"{path} not found: the structure checks need ../shared beside the clone (they fail in CI)")
    return path


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_shared_inputs_fail_in_ci_and_skip_visibly_elsewhere(tmp_path, monkeypatch, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=str(tmp_path / "docs" / "theory.md")):
        _shared_file("docs/theory.md", root=tmp_path)


def test_docs_theory_is_the_shared_specification():
    assert THEORY.read_text() == _shared_file("docs/theory.md").read_text(), (
        "docs/theory.md drifted from ../shared/docs/theory.md: copy the specification over"
    )


def test_every_cited_theory_section_exists():
    headings = set(re.findall(r"^##+ (\d+)\.", THEORY.read_text(), flags=re.M))
    cited: set[str] = set()
    for path in (REPO_ROOT / "molw2s").rglob("*.py"):
        for a, b in re.findall(r"theory\.md sections? (\d+)(?:-(\d+))?", path.read_text()):
            cited |= {str(n) for n in range(int(a), int(b or a) + 1)}
    assert cited, "the code cites no theory.md section"
    assert cited <= headings, f"cited sections missing from docs/theory.md: {sorted(cited - headings)}"


def test_imports_point_down_the_layers():
    tool = _shared_file("tools/import_graph.py")
    proc = subprocess.run(
        [sys.executable, str(tool), "molw2s"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 problem(s)" in proc.stdout


def test_no_function_local_import_of_a_sibling_data_module():
    """data/ had an import circle held together by function-local imports; none may return."""
    for path in (REPO_ROOT / "molw2s" / "data").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("molw2s.data"):
                        pytest.fail(f"{path.name}:{inner.lineno}: function-local import of {inner.module}")


def _molw2s_imports(path: Path) -> list[str]:
    """The molw2s modules ``path`` imports (``from molw2s.x import ...`` and ``import molw2s.x``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("molw2s"):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("molw2s")]
    return found


@pytest.mark.parametrize(
    ("files", "allowed"),
    [
        # the shared import checker does not know these; each may import only what its layer may
        (
            "finetuning/*.py",
            {"finetuning", "encoders", "theory", "w2s", "data", "chem", "config", "tracking", "training", "io"}
            | {"errors", "progress"},
        ),
        (
            "interop/*.py",
            {"interop", "encoders", "theory", "w2s", "data", "chem", "config", "tracking", "io", "errors"},
        ),
        (
            "multicap/*.py",
            {"multicap", "analysis", "finetuning", "encoders", "theory", "w2s", "data", "chem", "config", "io"}
            | {"errors"},
        ),
        ("tracking.py", {"errors"}),
        ("training.py", {"errors"}),
        ("processes.py", set()),
        ("progress.py", set()),
    ],
)
def test_packages_the_shared_checker_does_not_know_import_only_downwards(files: str, allowed: set[str]):
    """finetuning/ trains encoders like pretraining/ (layer 3), interop/ adapts encoders and
    data to other libraries (layer 3), tracking.py, training.py, processes.py and progress.py sit at the
    bottom with io and errors."""
    paths = list((REPO_ROOT / "molw2s").glob(files))
    assert paths, files
    for path in paths:
        for module in _molw2s_imports(path):
            layer = module.split(".")[1] if "." in module else ""
            assert layer in allowed, f"{path.name} imports {module}: above its layer"
