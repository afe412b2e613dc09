"""The notebooks run top to bottom (tiny settings injected into their parameters cell)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_notebook(name: str, parameters: str, tmp_path: Path) -> nbformat.NotebookNode:
    """Execute ``notebooks/<name>`` with its ``parameters`` cell replaced; return it executed."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{name} needs exactly one cell tagged 'parameters'"
    tagged[0].source = parameters
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    nbformat.write(nb, tmp_path / name)
    return nb


def _outputs(nb: nbformat.NotebookNode) -> str:
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            texts.append(out.get("text", "") + str(data.get("text/markdown", data.get("text/plain", ""))))
    return "\n".join(texts)


def test_theory_notebook(tmp_path):
    nb = run_notebook("02_theory.ipynb", "N_POINTS = 800\nTAIL_DIM = 400\nR = 5", tmp_path)
    text = _outputs(nb)
    rho = float(text.split("Spearman(M, Err_w2s)       =")[1].split()[0])
    assert rho > 0.9


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("nb_run")
    overrides = [
        "family=null",
        "strong=rdkit2d",
        "weak=[maccs,ecfp2-256,ecfp4-512,ecfp6-1024]",
        "tasks=[nci_logp]",
        "splits.seeds=[0,1]",
        "evaluation.n_boot=100",
    ]
    params = f'CONFIG = "../configs/quickstart.yaml"\nOVERRIDES = {overrides!r}\nRUN_DIR = "{run_dir}"'
    return run_dir, params


def test_quickstart_then_results_notebooks(quickstart_run, tmp_path):
    run_dir, params = quickstart_run
    nb = run_notebook("01_quickstart.ipynb", params, tmp_path)
    assert "nci_logp" in _outputs(nb)
    assert (run_dir / "report" / "report.md").is_file()
    nb = run_notebook("03_results.ipynb", f'RUN_DIR = "{run_dir}"', tmp_path)
    assert "cells; tasks: ['nci_logp']" in _outputs(nb)


def test_finetune_notebook(tmp_path, make_tiny_checkpoint):
    from molw2s.data.tasks import load_task

    make_tiny_checkpoint(tmp_path / "model", load_task("nci_logp").smiles[:200])
    params = f'MODEL = "{tmp_path / "model"}"\nTASK = "nci_logp"\nN_MOLECULES = 200\nEPOCHS = 2'
    text = _outputs(run_notebook("04_finetune.ipynb", params, tmp_path))
    assert "best epoch" in text and "svr(rdkit2d)" in text and "ridge(checkpoint)" in text


def test_multicapability_notebook(tmp_path):
    overrides = [
        "strong=ecfp2-256",
        "weak=[ecfp2-64,ecfp4-128]",  # no MACCS: the slowest featuriser on the demo tasks' 4.6k molecules
        "splits.seeds=[0,1]",
        "splits.n_weak=60",
        "splits.n_strong=100",
        "splits.frac=[0.9,0.05,0.05]",
        "student.max_iter=30",
        "student.stage2_max_iter=30",
        "selection.methods=[random,reward,oracle]",
        "selection.fractions=[0.25,0.75]",
        "selection.reward.folds=3",
        "bootstrap.rounds=2",
    ]
    params = f'CONFIG = "../configs/multicap_demo.yaml"\nOVERRIDES = {overrides!r}\nRUN_DIR = "{tmp_path / "run"}"'
    text = _outputs(run_notebook("05_multicapability.ipynb", params, tmp_path))
    assert "capabilities ['nci_logp', 'nci_tpsa', 'nci_mr']" in text
    assert "largest |change| with the ridge student: 0" in text
    assert "reward - random (two-stage)" in text and "reward: two-stage - one-stage all" in text
