"""configs/gpu.yaml's own code path at tiny scale on the CPU (issue 27): the shipped
experiment and family files, shrunk by ``benchmarks/gpu_check.py`` (model sizes, steps,
corpus size, batch, one task; every setting of the path kept), run with ``molw2s run`` as
docs/experiment.md runs them on a GPU: two member processes, each with batch workers
building packed batches, bf16 embedding, the sweep in worker processes, the evaluation.
And gpu_check.py's other sections, at tiny scale on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from molw2s.cli import app

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from gpu_check import small_gpu_configs  # noqa: E402


def test_gpu_yaml_runs_end_to_end_at_tiny_scale_on_the_cpu(shared_data: Path, tmp_path: Path) -> None:
    experiment = small_gpu_configs(tmp_path, tiny=True)
    config = yaml.safe_load(experiment.read_text())
    family = yaml.safe_load((tmp_path / "family.yaml").read_text())
    train = family["train"]
    assert train["data_workers"] > 0 and train["packing"] and family["parallel_members"] == 2
    assert config["embedding"]["precision"] == "bfloat16" and config["sweep_jobs"] > 1
    run = tmp_path / "run"
    args = ["run", str(experiment), "--data-dir", str(shared_data / "moleculenet"), f"run_dir={run}"]
    result = CliRunner().invoke(app, [*args, f"corpus_dir={shared_data}"])
    assert result.exit_code == 0, result.output[-3000:] + repr(result.exception)

    timings = json.loads((run / "timings.json").read_text())
    assert list(timings["seconds"]) == ["pretraining", "embedding", "sweep", "evaluation"]
    for member in family["members"]:
        assert (run / "models" / member["name"] / "COMPLETE.json").is_file()
    results = json.loads((run / "report" / "results.json").read_text())
    weak = {r["weak"] for r in results["tasks"]["FreeSolv"]["weak_models"]}
    assert len(weak) == len(config["weak"]) + len(config["expand"]["controlled"]["subspace_dims"])
    assert results["tasks"]["FreeSolv"]["n_cells"] == len(weak) * len(config["splits"]["seeds"])
    assert "Task FreeSolv" in (run / "report" / "report.md").read_text()


def test_gpu_check_runs_its_sections_on_the_cpu(shared_data: Path, tmp_path: Path) -> None:
    command = [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--cpu-smoke", "--out", str(tmp_path)]
    command += ["--data-root", str(shared_data), "--skip", "e2e"]  # e2e: the test above
    subprocess.run(command, check=True, timeout=600, capture_output=True)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [k for k, v in report.items() if isinstance(v, dict) and "error" in v] == []
    assert set(report["pipeline"]) == {"1_workers", "2_workers"}
    for run in (*report["strong"].values(), *report["side_by_side"].values()):
        assert run["steps_per_s"] > 0 and run["real_tokens_per_s"] > 0 and 0 <= run["data_wait_share"] < 1
    assert report["profile"]["attention_kernel"] and report["profile"]["top"]
    assert report["embedding"]["bfloat16_molecules_per_s"] > 0
    assert "| strong member, packed |" in (tmp_path / "gpu_check.md").read_text()
