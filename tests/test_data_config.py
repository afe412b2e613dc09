"""Data-stage settings: shipped YAML files load; unknown or inconsistent keys are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from molw2s.config import load_config
from molw2s.data.config import DataConfig
from molw2s.data.prepare import load_corpus_spec, load_task_spec, split_task
from molw2s.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", ["data_quickstart.yaml", "data_moleculenet.yaml"])
def test_shipped_configs_load(name):
    cfg = load_config(DataConfig, CONFIGS / name)
    assert cfg.tasks and cfg.split.frac == (0.8, 0.1, 0.1)


def test_quickstart_config_runs_offline():
    cfg = load_config(DataConfig, CONFIGS / "data_quickstart.yaml", ["download=false"])
    corpus = load_corpus_spec(cfg)
    assert len(corpus) == cfg.corpus.n == 2000 and corpus.name == "nci5k"
    task = load_task_spec(cfg.tasks[1], cfg)
    assert task.name == "nci_tpsa" and len(task) == 4991
    out = split_task(task, cfg.split)
    # the split is drawn over the 4999 file rows; the 8 invalid NCI rows are dropped from it
    kept = out.split.sizes()
    assert {p: kept[p] + len(out.dropped.get(p, [])) for p in kept} == {"train": 3999, "valid": 500, "test": 500}
    assert sorted(r for v in out.dropped.values() for r in v.tolist()) == [i.row for i in task.invalid]
    assert len(out.w2s.weak) == len(out.w2s.strong) == len(out.split.train) // 2


def test_unknown_keys_and_bad_values_are_named():
    with pytest.raises(ConfigError, match=r"unknown key 'corpus\.sead'.*did you mean 'seed'"):
        load_config(DataConfig, None, ["corpus.sead=3"])
    with pytest.raises(ConfigError, match=r"tasks\.0\.duplicates"):
        load_config(DataConfig, None, ["tasks=[{name: ESOL, duplicates: drop_all}]"])
    with pytest.raises(ConfigError, match=r"largest_fragment"):
        load_config(DataConfig, None, ["corpus.standardize.strip_salts=true"])
    with pytest.raises(ConfigError, match="summing to 1"):
        load_config(DataConfig, None, ["split.frac=[0.5, 0.1, 0.1]"])
    with pytest.raises(ConfigError, match="needs path"):
        load_config(DataConfig, None, ["split.method=file"])
    with pytest.raises(ConfigError, match="only used by method 'file'"):
        load_config(DataConfig, None, ["split.path=x.json"])
    with pytest.raises(ConfigError, match=r"corpus\.n"):
        load_config(DataConfig, None, ["corpus.n=0"])
