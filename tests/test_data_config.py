"""Data specs (corpus, task, split): they load offline; unknown or inconsistent keys are named."""

from __future__ import annotations

import pytest

from molw2s.config import load_config
from molw2s.data.config import CorpusSpec, SplitSpec, TaskSpec
from molw2s.data.prepare import load_corpus_spec, load_task_spec, split_task
from molw2s.errors import ConfigError


def test_quickstart_specs_run_offline():
    corpus_spec = load_config(CorpusSpec, None, ["name=nci5k", "n=2000"])
    corpus = load_corpus_spec(corpus_spec, download=False)
    assert len(corpus) == corpus_spec.n == 2000 and corpus.name == "nci5k"
    every_row = load_task_spec(TaskSpec(name="nci_tpsa", duplicates="keep"), download=False)
    assert every_row.name == "nci_tpsa" and len(every_row) == 4991
    out = split_task(every_row, SplitSpec(), seed=0)
    # the split is drawn over the 4999 file rows; the 8 invalid NCI rows are dropped from it
    kept = out.split.sizes()
    assert {p: kept[p] + len(out.dropped.get(p, [])) for p in kept} == {"train": 3999, "valid": 500, "test": 500}
    assert sorted(r for v in out.dropped.values() for r in v.tolist()) == [i.row for i in every_row.invalid]
    assert out.n_dropped == len(every_row.invalid)
    assert len(out.w2s.weak) == len(out.w2s.strong) == len(out.split.train) // 2
    task = load_task_spec(TaskSpec(name="nci_tpsa"), download=False)  # default: duplicates merged
    merged = split_task(task, SplitSpec(), seed=0)
    assert len(task) == len(set(task.smiles)) == 4892 and sum(merged.split.sizes().values()) == len(task)
    assert merged.n_dropped == len(task.invalid)


def test_unknown_keys_and_bad_values_are_named():
    with pytest.raises(ConfigError, match=r"unknown key 'sead'.*did you mean 'seed'"):
        load_config(CorpusSpec, None, ["sead=3"])
    with pytest.raises(ConfigError, match=r"duplicates"):
        load_config(TaskSpec, None, ["name=ESOL", "duplicates=drop_all"])
    with pytest.raises(ConfigError, match=r"largest_fragment"):
        load_config(CorpusSpec, None, ["standardize.strip_salts=true"])
    with pytest.raises(ConfigError, match="summing to 1"):
        load_config(SplitSpec, None, ["frac=[0.5, 0.1, 0.1]"])
    with pytest.raises(ConfigError, match="needs path"):
        load_config(SplitSpec, None, ["method=file"])
    with pytest.raises(ConfigError, match="only used by method 'file'"):
        load_config(SplitSpec, None, ["path=x.json"])
    with pytest.raises(ConfigError, match=r"\bn\b"):
        load_config(CorpusSpec, None, ["n=0"])
    with pytest.raises(ConfigError, match="seeds listed twice"):
        load_config(SplitSpec, None, ["seeds=[1, 1]"])
