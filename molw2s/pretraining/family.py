"""Pretrain a whole family (weak members, snapshots, the strong model) and find its models.

Layout of a run directory::

    <run_dir>/family.json                 data report, unigram baseline
    <run_dir>/<member>/checkpoints/step-N/ resumable checkpoints (newest kept)
    <run_dir>/<member>/snapshots/step-N/   the model "<member>@N" (HF format)
    <run_dir>/<member>/final/              the model "<member>" (HF format)
    <run_dir>/<member>/COMPLETE.json       written last: the member is finished
    <run_dir>/seed=<S>/<member>/...        the same for the replicate of pretraining seed S

Model names used by later stages: ``<member>`` for a final model, ``<member>@<step>``
for a snapshot (intermediate checkpoints count as weak models). A family with ``seeds``
has one replicate of every model per seed (:func:`replicate_dir`); the names are the same
in each replicate, and :func:`family_models` maps them for one seed.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molw2s.encoders.model_files import MODEL_FILE
from molw2s.io import cache_dir, content_hash, read_manifest, verify_dir, write_json_atomic
from molw2s.pretraining.config import FamilyConfig, MemberConfig
from molw2s.pretraining.parallel import MemberJob, longest_first, train_in_processes
from molw2s.tracking import Tracking

log = logging.getLogger(__name__)

#: train settings that change bookkeeping, not the trained weights
_BOOKKEEPING = {
    "checkpoint_every",
    "keep_checkpoints",
    "eval_every",
    "eval_batch_size",
    "device",
    "num_threads",
    "data_workers",
    "micro_batches",
    "packing",  # the same batches and loss, laid out otherwise
    "compile",
    "compile_mode",
}


def default_run_dir(family: FamilyConfig) -> Path:
    """``cache_dir()/pretrain/<family name>``."""
    return cache_dir() / "pretrain" / family.name


def replicate_dir(root: Path, family: FamilyConfig, seed: int | None) -> Path:
    """Where the replicate of pretraining seed ``seed`` keeps what ``root`` holds: ``root``
    itself for ``None`` or the family's ``train.seed`` (the layout of a family without
    ``seeds``, so its models stay valid when seeds are added), else ``root/seed=<seed>``."""
    return root if seed is None or seed == family.train.seed else root / f"seed={seed}"


def member_config_hash(
    family: FamilyConfig, member: MemberConfig, data_fingerprint: str, seed: int | None = None
) -> str:
    """Identity of what a member's weights depend on (data, size, steps, optimisation,
    the replicate's ``seed``)."""
    train = {k: v for k, v in family.member_train(member, seed).model_dump().items() if k not in _BOOKKEEPING}
    if not train["bf16_cpu"]:  # added later: absent when off, so earlier members keep their hash
        del train["bf16_cpu"]
    return content_hash("molbert-member-v1", data_fingerprint, member.model.model_dump(), member.steps, train)


def family_models(family: FamilyConfig, run_dir: str | Path | None = None, seed: int | None = None) -> dict[str, Path]:
    """Model name -> HF directory, for every model of the family (finished or not), in the
    replicate of pretraining seed ``seed`` (None: the family without replicates)."""
    root = replicate_dir(Path(run_dir) if run_dir is not None else default_run_dir(family), family, seed)
    out: dict[str, Path] = {}
    for member in family.members:
        for step in member.snapshots:
            out[f"{member.name}@{step}"] = root / member.name / "snapshots" / f"step-{step:08d}"
        out[member.name] = root / member.name / "final"
    return out


@dataclass
class ModelRow:
    """One line of the results table."""

    name: str
    role: str  # strong | weak | baseline
    steps: int | None
    n_params: int | None
    metrics: dict[str, Any]
    status: str  # trained | finished earlier | snapshot | not trained
    seed: int | None = None  # the replicate's pretraining seed (None: the family has no seeds)


@dataclass
class FamilyResult:
    """Held-out metrics of every model of the family and the unigram baseline."""

    run_dir: Path
    rows: list[ModelRow] = field(default_factory=list)
    data_report: list[str] = field(default_factory=list)


def pretrain_family(
    family: FamilyConfig,
    run_dir: str | Path | None = None,
    *,
    members: list[str] | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    on_step: Callable[[str, int], None] | None = None,
    tracking: Tracking = "auto",
) -> FamilyResult:
    """Train every member (or those named) that is not finished yet, in every replicate
    (``family.seeds``); return the table.

    The data (split, vocabulary, descriptor targets) are prepared once and shared.
    Members train longest first, ``family.parallel_members`` at a time in worker processes
    (one at a time under torchrun, or when ``on_step`` is given).
    ``on_step(member, step)`` is called after each optimisation step; ``tracking`` (see
    :mod:`molw2s.tracking`) receives each member's curves under ``<member>/tensorboard``.
    """
    from molw2s.pretraining.corpus import prepare_pretraining_data
    from molw2s.pretraining.distributed import from_main, init_distributed
    from molw2s.pretraining.evaluation import baseline_metrics
    from molw2s.pretraining.trainer import MemberTrainer, is_finished

    root = Path(run_dir) if run_dir is not None else default_run_dir(family)
    chosen = [family.member(n) for n in members] if members else list(family.members)
    dist = init_distributed(family.train.device)
    # rank 0 prepares the data (for hours, with descriptors of a large corpus) and hands it out
    data = from_main(dist, lambda: prepare_pretraining_data(family.data, data_dir=data_dir, progress=progress))
    for line in data.report.lines():
        log.info(line)
    baseline = baseline_metrics(data)
    if dist.is_main:
        write_json_atomic(root / "family.json", {"data_report": data.report.lines(), "unigram_baseline": baseline})
    status: dict[tuple[str, int | None], str] = {}
    jobs: list[MemberJob] = []
    for member in longest_first(family, chosen):
        for seed in family.replicates():
            member_dir = replicate_dir(root, family, seed) / member.name
            config_hash = member_config_hash(family, member, data.fingerprint, seed)
            if is_finished(member_dir, config_hash, member.snapshots):
                log.info("%s: already finished, skipped", member_dir.relative_to(root))
                status[member.name, seed] = "finished earlier"
                continue
            jobs.append(MemberJob(member.name, member_dir, config_hash, bar_position=len(jobs), seed=seed))
    processes = min(family.parallel_members, len(jobs))
    if processes > 1 and not dist.distributed and on_step is None:
        log.info("training %d members in %d processes", len(jobs), processes)
        train_in_processes(family, jobs, data, processes=processes, progress=progress, tracking=tracking)
    else:
        for job in jobs:
            callback = None if on_step is None else (lambda step, name=job.member: on_step(name, step))
            member = family.member(job.member)
            MemberTrainer(
                member,
                family.member_train(member, job.seed),
                data,
                job.member_dir,
                config_hash=job.config_hash,
                progress=progress,
                on_step=callback,
                dist=dist,
                tracking=tracking,
            ).train()
    status.update(((job.member, job.seed), "trained") for job in jobs)
    return collect_results(family, root, status=status, baseline=baseline, data_report=data.report.lines())


def collect_results(
    family: FamilyConfig,
    run_dir: str | Path,
    *,
    status: dict[tuple[str, int | None], str] | None = None,
    baseline: dict[str, float] | None = None,
    data_report: list[str] | None = None,
) -> FamilyResult:
    """Read the held-out metrics of every model of a run directory, replicate by replicate
    (missing ones flagged); ``status`` is keyed by (member, replicate seed)."""
    root = Path(run_dir)
    status = status or {}
    result = FamilyResult(run_dir=root, data_report=data_report or [])
    for seed in family.replicates():
        models = family_models(family, root, seed)
        for member in family.members:
            snapshots = [(f"{member.name}@{s}", "weak", "snapshot") for s in member.snapshots]
            final_role = "strong" if member.name == family.strong else "weak"
            final = (member.name, final_role, status.get((member.name, seed), "finished earlier"))
            for name, role, state in [*snapshots, final]:
                ok = verify_dir(models[name]) is None
                meta = read_manifest(models[name]) if ok else {}
                result.rows.append(
                    ModelRow(
                        name=name,
                        role=role,
                        steps=meta.get("step"),
                        n_params=_count_params(models[name]) if ok else None,
                        metrics=meta.get("metrics", {}),
                        status=state if ok else "not trained",
                        seed=seed,
                    )
                )
    if baseline is None and (root / "family.json").is_file():
        baseline = json.loads((root / "family.json").read_text())["unigram_baseline"]
    if baseline is not None:
        result.rows.append(ModelRow("unigram baseline", "baseline", None, None, baseline, "-"))
    return result


def _count_params(model_dir: Path) -> int:
    """Parameters of the encoder (heads excluded), read from the safetensors header."""
    from safetensors import safe_open

    with safe_open(str(model_dir / MODEL_FILE), framework="pt") as fh:
        return sum(math.prod(fh.get_slice(k).get_shape()) for k in fh.keys() if k.startswith("bert."))  # noqa: SIM118 - safe_open is not iterable
