"""The multi-capability experiments on one split seed (theory.md section 8). Each returns
one record (a dict) per measured quantity; errors are test-set MSE in the capability's
units (Err_w2s of theory.md section 2), differences are formed within a seed by
:func:`differences` and summarised over seeds by :mod:`molw2s.multicap.summary`.

1. :func:`independence`: each capability's Err_w2s when the student learns it alone, with
   one other capability, and with all of them.
2. :func:`quality_and_diversity`: Err_w / Err_w2s / Err_sc per weak model (quality) on
   all of D_s, a random subset and a scaffold-clustered subset of the same size (diversity).
3. :func:`bootstrapping`: the student relabels D_s with its own predictions, round by round.
4.-5. :func:`selection`: selection methods x fractions, trained on the selection only and in
   two stages (all weak labels, then the selection), against one stage on all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from molw2s.multicap.capability import Capability, WeakSupervision
from molw2s.multicap.config import BootstrapConfig, SelectionConfig, StudentConfig
from molw2s.multicap.diversity import diversity, scaffold_clustered_subset
from molw2s.multicap.finetune_student import FinetuneSetup
from molw2s.multicap.labelled import Labelled
from molw2s.multicap.selection import select_smallest, selection_scores
from molw2s.multicap.students import Student, make_student
from molw2s.theory.predictor import PredictorConfig
from molw2s.w2s.heads import HeadConfig
from molw2s.w2s.metrics import mse, pgr

Record = dict[str, Any]


def test_error(student: Student, cap: Capability) -> float:
    """Test-set MSE of ``student`` on capability ``cap``."""
    return mse(cap.y[cap.test], student.predict(cap.name, cap.test))


def weak_data(
    caps: Sequence[Capability], labels: Mapping[str, np.ndarray], subsets: Mapping[str, np.ndarray] | None = None
) -> Labelled:
    """Student training data: each capability's D_s rows (or the ``subsets`` positions of
    them) with ``labels`` (one array over D_s per capability)."""
    out = {}
    for cap in caps:
        pick = np.arange(len(cap.strong)) if subsets is None else subsets[cap.name]
        out[cap.name] = (cap.strong[pick], np.asarray(labels[cap.name])[pick])
    return out


def independence(
    caps: Sequence[Capability],
    sups: Mapping[str, WeakSupervision],
    student: StudentConfig,
    finetune: FinetuneSetup | None = None,
) -> list[Record]:
    """Err_w2s of every capability trained ``alone``, with each other capability
    (``trained_with`` = its name) and with ``all`` (three or more capabilities).
    ``finetune``: the checkpoint of a ``finetune`` student (as in every experiment)."""
    labels = {name: sup.labels for name, sup in sups.items()}
    groups: list[tuple[Capability, ...]] = [(c,) for c in caps] + list(combinations(caps, 2))
    if len(caps) > 2:
        groups.append(tuple(caps))
    records = []
    for group in groups:
        fitted = make_student(student, group, finetune).fit(weak_data(group, labels))
        for cap in group:
            others = [c.name for c in group if c is not cap]
            with_ = "alone" if not others else others[0] if len(others) == 1 else "all"
            records.append({"capability": cap.name, "trained_with": with_, "err_w2s": test_error(fitted, cap)})
    return records


def quality_and_diversity(
    cap: Capability,
    sups: Mapping[str, WeakSupervision],
    student: StudentConfig,
    fraction: float,
    seed: int,
    finetune: FinetuneSetup | None = None,
) -> list[Record]:
    """Per weak model (``sups``: weak model name -> its supervision of ``cap``) and D_s
    subset (``all``, ``random``, ``scaffold``; the two subsets of ``fraction`` of D_s):
    Err_w, Err_w2s, Err_sc (the student on the subset's gold labels), PGR, and the
    subset's diversity."""
    smiles = cap.strong_smiles()
    size = max(2, round(fraction * len(smiles)))
    subsets = {
        "all": np.arange(len(smiles)),
        "random": np.sort(np.random.default_rng([seed, 7]).permutation(len(smiles))[:size]),
        "scaffold": scaffold_clustered_subset(smiles, size, seed),
    }
    gold = {cap.name: cap.y[cap.strong]}
    records = []
    for subset, pick in subsets.items():
        measures = diversity([smiles[i] for i in pick])
        ceiling = test_error(make_student(student, [cap], finetune).fit(weak_data([cap], gold, {cap.name: pick})), cap)
        for weak_model, sup in sups.items():
            fitted = make_student(student, [cap], finetune).fit(
                weak_data([cap], {cap.name: sup.labels}, {cap.name: pick})
            )
            err_w, err_w2s = mse(cap.y[cap.test], sup.test), test_error(fitted, cap)
            records.append(
                {
                    "capability": cap.name,
                    "weak_model": weak_model,
                    "subset": subset,
                    "n": len(pick),
                    "err_w": err_w,
                    "err_w2s": err_w2s,
                    "err_sc": ceiling,
                    "pgr": pgr(err_w, err_w2s, ceiling),
                    **measures,
                }
            )
    return records


def prediction_entropy(values: np.ndarray, low: float, high: float, bins: int) -> float:
    """Entropy (nats) of the histogram of ``values`` over [low, high] in ``bins`` bins
    (values outside fall into the edge bins)."""
    if high <= low:
        return 0.0
    edges = np.linspace(low, high, bins + 1)
    counts = np.bincount(np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1), minlength=bins)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def bootstrapping(
    caps: Sequence[Capability],
    sups: Mapping[str, WeakSupervision],
    student: StudentConfig,
    config: BootstrapConfig,
    finetune: FinetuneSetup | None = None,
) -> list[Record]:
    """Round 0: the student (all capabilities jointly) on the weak labels; round r: a fresh
    student on its round r-1 predictions of D_s. Per round and capability: test MSE, and
    the variance, std and histogram entropy of its predictions on D_s (range: round 0)."""
    labels = {name: sup.labels for name, sup in sups.items()}
    ranges: dict[str, tuple[float, float]] = {}
    records = []
    for round_ in range(config.rounds + 1):
        fitted = make_student(student, caps, finetune).fit(weak_data(caps, labels))
        labels = {cap.name: fitted.predict(cap.name, cap.strong) for cap in caps}
        for cap in caps:
            pred = labels[cap.name]
            low, high = ranges.setdefault(cap.name, (float(pred.min()), float(pred.max())))
            records.append(
                {
                    "capability": cap.name,
                    "round": round_,
                    "err_w2s": test_error(fitted, cap),
                    "pred_var": float(pred.var()),
                    "pred_entropy": prediction_entropy(pred, low, high, config.bins),
                    "label_change": float(np.sqrt(np.mean((pred - sups[cap.name].labels) ** 2))),
                }
            )
    return records


def selection(
    caps: Sequence[Capability],
    sups: Mapping[str, WeakSupervision],
    student: StudentConfig,
    config: SelectionConfig,
    *,
    weak_head: HeadConfig,
    strong_head: HeadConfig,
    predictor: PredictorConfig | None = None,
    seed: int = 0,
    finetune: FinetuneSetup | None = None,
) -> list[Record]:
    """One stage on all weak labels (``method`` none), then per method and fraction: the
    student on the selection only and in two stages (stage 1: all, stage 2: the selection).
    ``selected_error``: mean |weak label - gold| over the selected examples."""
    labels = {name: sup.labels for name, sup in sups.items()}
    stage1 = make_student(student, caps, finetune).fit(weak_data(caps, labels))
    records: list[Record] = [
        {
            "capability": c.name,
            "method": "none",
            "fraction": 1.0,
            "training": "one-stage all",
            "err_w2s": test_error(stage1, c),
            "selected_error": float(np.mean(np.abs(sups[c.name].labels - c.y[c.strong]))),
        }
        for c in caps
    ]
    for method in config.methods:
        scores = {
            c.name: selection_scores(
                method,
                c,
                sups[c.name],
                weak_head=weak_head,
                strong_head=strong_head,
                reward=config.reward,
                predictor=predictor,
                seed=seed,
            )
            for c in caps
        }
        for fraction in config.fractions:
            picks = {name: select_smallest(s, fraction) for name, s in scores.items()}
            data = weak_data(caps, labels, picks)
            trained = {
                "selection only": make_student(student, caps, finetune).fit(data),
                "two-stage": stage1.refine(data),
            }
            for training, fitted in trained.items():
                for c in caps:
                    chosen = c.strong[picks[c.name]]
                    records.append(
                        {
                            "capability": c.name,
                            "method": method,
                            "fraction": fraction,
                            "training": training,
                            "err_w2s": test_error(fitted, c),
                            "selected_error": float(np.mean(np.abs(sups[c.name].labels[picks[c.name]] - c.y[chosen]))),
                        }
                    )
    return records


def differences(
    frame: pd.DataFrame, keys: list[str], column: str, baseline: str, value: str = "err_w2s"
) -> pd.DataFrame:
    """Rows of ``frame`` whose ``column`` is not ``baseline``, with ``diff`` = their ``value``
    minus the baseline row's of the same ``keys`` (e.g. seed, capability) and ``rel_diff`` =
    diff / baseline value."""
    base = frame.loc[frame[column] == baseline, [*keys, value]].rename(columns={value: "baseline"})
    merged: pd.DataFrame = frame.loc[frame[column] != baseline].merge(base, on=keys, how="inner")
    merged["diff"] = merged[value] - merged["baseline"]
    merged["rel_diff"] = merged["diff"] / merged["baseline"]
    return merged


def selection_differences(frame: pd.DataFrame) -> pd.DataFrame:
    """Per seed, capability, fraction and training: method - random; and per method:
    two-stage - one-stage on all, two-stage - selection only (column ``comparison``)."""
    chosen = frame[frame["method"] != "none"]
    vs_random = differences(chosen, ["seed", "capability", "fraction", "training"], "method", "random")
    vs_random = vs_random.assign(comparison=vs_random["method"] + " - random (" + vs_random["training"] + ")")
    two = chosen[chosen["training"] == "two-stage"].drop(columns="training")
    only = chosen[chosen["training"] == "selection only"][["seed", "capability", "method", "fraction", "err_w2s"]]
    alone = frame[frame["method"] == "none"][["seed", "capability", "err_w2s"]]
    vs_all = two.merge(alone.rename(columns={"err_w2s": "baseline"}), on=["seed", "capability"])
    vs_only = two.merge(only.rename(columns={"err_w2s": "baseline"}), on=["seed", "capability", "method", "fraction"])
    parts = [vs_random]
    for label, part in (("two-stage - one-stage all", vs_all), ("two-stage - selection only", vs_only)):
        part = part.assign(diff=part["err_w2s"] - part["baseline"], comparison=part["method"] + ": " + label)
        parts.append(part.assign(rel_diff=part["diff"] / part["baseline"], training="two-stage"))
    out: pd.DataFrame = pd.concat(parts, ignore_index=True)
    return out
