"""configs/gpu.yaml's own code path at tiny scale on the CPU: the shipped experiment and
family files, loaded and shrunk (model sizes, steps, corpus size, batch, one task), then run
with ``molw2s run`` as docs/experiment.md runs them on a GPU: two member processes, each
with batch workers building packed batches, bf16 embedding, the sweep in worker processes,
the evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from molw2s.cli import app

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_MODEL = {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32}


def _shrunk_family() -> tuple[dict, dict[str, str]]:
    """family_gpu.yaml at tiny scale, and the old -> new names of its snapshots."""
    family = yaml.safe_load((CONFIGS / "family_gpu.yaml").read_text())
    family["data"].update(corpus={"name": "moses", "n": 300}, max_val=32, descriptor_jobs=2, mix_tasks=["FreeSolv"])
    train = family["train"]
    assert train["device"] == "cuda" and train["data_workers"] > 0 and train["packing"]
    train.update(device="cpu", batch_size=8, warmup_steps=1, checkpoint_every=4, eval_every=4, data_workers=1)
    assert family["parallel_members"] == 2
    renamed: dict[str, str] = {}
    for member in family["members"]:
        member["model"] = TINY_MODEL
        member["train"] = {k: v for k, v in member.get("train", {}).items() if k != "warmup_steps"}
        snapshots = member.get("snapshots", [])
        member["steps"] = 2 * (len(snapshots) + 1) + 2
        member["snapshots"] = [2 * (i + 1) for i in range(len(snapshots))]
        renamed.update(
            {f"{member['name']}@{a}": f"{member['name']}@{b}" for a, b in zip(snapshots, member["snapshots"])}
        )
    return family, renamed


def test_gpu_yaml_runs_end_to_end_at_tiny_scale_on_the_cpu(shared_data: Path, tmp_path: Path) -> None:
    family, renamed = _shrunk_family()
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(family))
    config = yaml.safe_load((CONFIGS / "gpu.yaml").read_text())
    assert config["embedding"]["precision"] == "bfloat16"
    config.update(
        family="family.yaml",
        run_dir=str(tmp_path / "run"),
        weak=[renamed.get(name, name) for name in config["weak"]],
        tasks=["FreeSolv"],
        sweep_jobs=2,
        evaluation={"n_boot": 50},
    )
    assert len(config["expand"]["controlled"]["subspace_dims"]) == 3
    config["expand"]["controlled"]["subspace_dims"] = [8, 4, 2]  # of the 16-d strong representation
    (tmp_path / "gpu.yaml").write_text(yaml.safe_dump(config))
    args = ["run", str(tmp_path / "gpu.yaml"), "--data-dir", str(shared_data / "moleculenet")]
    result = CliRunner().invoke(app, [*args, f"corpus_dir={shared_data}"])
    assert result.exit_code == 0, result.output + repr(result.exception)

    run = tmp_path / "run"
    timings = json.loads((run / "timings.json").read_text())
    assert list(timings["seconds"]) == ["pretraining", "embedding", "sweep", "evaluation"]
    for member in family["members"]:
        assert (run / "models" / member["name"] / "COMPLETE.json").is_file()
    results = json.loads((run / "report" / "results.json").read_text())
    weak = {r["weak"] for r in results["tasks"]["FreeSolv"]["weak_models"]}
    assert len(weak) == len(config["weak"]) + len(config["expand"]["controlled"]["subspace_dims"])
    assert results["tasks"]["FreeSolv"]["n_cells"] == len(weak) * len(config["splits"]["seeds"])
    assert "Task FreeSolv" in (run / "report" / "report.md").read_text()
