"""One device command for configs/gpu.yaml's GPU path (issue 27): run by benchmarks/gpu_check.sh.

On a machine with one GPU and 16 cores, in under 8 minutes, with only the checkout, the
wheels of ../shared/docs/gpu.md and the data copied into ``.gpu-data``, it records:

- ``environment``: GPU name, driver, torch / CUDA / transformers versions, the card's dense
  bf16 peak (chosen by its name: H100 SXM, PCIe, NVL and H200 differ), CPU cores;
- ``e2e``: ``molw2s run`` of configs/gpu.yaml on a small family (the gpu family's models,
  a tenth of its steps, 50,000 MOSES molecules), with each stage's time;
- ``pipeline``: the batch pipeline alone (the gpu family's batches) with 7 and 14 workers;
- ``strong``: the strong member alone, 30 warm-up + 300 timed steps, packed (the family's
  policy) and padded in length buckets: steps/s, real tokens/s, MFU from the lengths
  trained and the card's peak, data wait, peak memory;
- ``profile``: a short torch.profiler trace of the strong member: top kernels, which
  attention kernel ran (flash / memory-efficient / math / cuDNN), idle gaps of the device;
- ``side_by_side``: the strong and the weak_m member trained at once in two processes
  (as ``parallel_members: 2`` does);
- ``embedding``: a BERT-base encoder embedding MOSES molecules in bf16.

Output: ``OUT/gpu_check.json`` and ``OUT/gpu_check.md`` (a table for docs/benchmarks.md).
``--cpu-smoke`` runs every section at tiny scale on the CPU (the plumbing, in about two
minutes on 2 cores); ``--skip`` leaves sections out. A section that fails is recorded with
its error and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from molw2s.encoders.device import available_cpus, peak_bf16_flops, resolve_device
from molw2s.encoders.model_size import ModelSizeConfig
from molw2s.pretraining.config import FamilyConfig, MemberConfig, TrainConfig
from molw2s.pretraining.corpus import PretrainingData, prepare_pretraining_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pretrain import model_flops, sync, timed_steps

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
SECTIONS = ("environment", "e2e", "pipeline", "strong", "profile", "side_by_side", "embedding")
TINY_MODEL = {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32}


def small_gpu_configs(out: Path, *, tiny: bool) -> Path:
    """configs/gpu.yaml and its family, shrunk, written to ``out``; returns the experiment file.

    On the GPU (``tiny`` false): the family's models, a tenth of each member's steps and
    snapshots, 50,000 MOSES molecules, 200 bootstrap resamples. ``tiny``: 1-layer 16-wide
    members of a few steps, 300 molecules, batch 8, one task, every setting of the code path
    kept (parallel members, batch workers, packing, bf16 embedding, sweep workers), CPU."""
    family = yaml.safe_load((CONFIGS / "family_gpu.yaml").read_text())
    config = yaml.safe_load((CONFIGS / "gpu.yaml").read_text())
    renamed: dict[str, str] = {}
    for member in family["members"]:
        snapshots = member.get("snapshots", [])
        if tiny:
            member["model"] = TINY_MODEL
            member["train"] = {k: v for k, v in member.get("train", {}).items() if k != "warmup_steps"}
            member["steps"] = 2 * (len(snapshots) + 1) + 2
            member["snapshots"] = [2 * (i + 1) for i in range(len(snapshots))]
        else:
            member["steps"] //= 10
            member["snapshots"] = [s // 10 for s in snapshots]
            member["train"] = {**member.get("train", {}), "warmup_steps": 20}
        renamed.update(
            {f"{member['name']}@{a}": f"{member['name']}@{b}" for a, b in zip(snapshots, member["snapshots"])}
        )
    config.update(family="family.yaml", weak=[renamed.get(name, name) for name in config["weak"]])
    config["evaluation"] = {"n_boot": 200}
    if tiny:
        family["data"].update(corpus={"name": "moses", "n": 300}, max_val=32, descriptor_jobs=2, mix_tasks=["FreeSolv"])
        family["train"].update(
            device="cpu", batch_size=8, warmup_steps=1, checkpoint_every=4, eval_every=4, data_workers=1
        )
        config.update(tasks=["FreeSolv"], sweep_jobs=2, evaluation={"n_boot": 50})
        config["expand"]["controlled"]["subspace_dims"] = [8, 4, 2]  # of the 16-d strong representation
    else:
        family["data"]["corpus"]["n"] = 50000
    out.mkdir(parents=True, exist_ok=True)
    (out / "family.yaml").write_text(yaml.safe_dump(family))
    (out / "gpu.yaml").write_text(yaml.safe_dump(config))
    return out / "gpu.yaml"


# -- sections -------------------------------------------------------------------------------


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, the card and its bf16 peak, the cores."""
    import transformers

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "cpu_count": os.cpu_count(),
        "available_cpus": available_cpus(),
        "device": str(device),
    }
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        props = torch.cuda.get_device_properties(device)
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version,power.limit,clocks.max.sm", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        info.update(
            gpu=name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            sm_count=props.multi_processor_count,
            nvidia_smi=smi.stdout.strip() or smi.stderr.strip(),
            peak_bf16_tflops=(peak_bf16_flops(name) or 0) / 1e12 or None,
            flash_sdp=torch.backends.cuda.flash_sdp_enabled(),
            mem_efficient_sdp=torch.backends.cuda.mem_efficient_sdp_enabled(),
            tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        )
    return info


def end_to_end(out: Path, data_root: Path, *, tiny: bool, timeout: float) -> dict[str, Any]:
    """``molw2s run`` of the shrunk gpu.yaml in a subprocess; its stage times."""
    experiment = small_gpu_configs(out / "e2e_configs", tiny=tiny)
    run_dir = out / "e2e_run"
    command = [
        sys.executable,
        "-m",
        "molw2s.cli",
        "run",
        str(experiment),
        "--data-dir",
        str(data_root / "moleculenet"),
        f"corpus_dir={data_root}",
        f"run_dir={run_dir}",
    ]
    start = time.perf_counter()
    with open(out / "e2e.log", "w") as log:
        proc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    result: dict[str, Any] = {"returncode": proc.returncode, "wall_s": round(time.perf_counter() - start, 1)}
    timings = run_dir / "timings.json"
    if timings.is_file():
        result["stages_s"] = json.loads(timings.read_text())["seconds"]
    return result


def pipeline(data: PretrainingData, train: TrainConfig, workers: list[int], steps: int) -> dict[str, Any]:
    """Batches/s and molecules/s of the member's batch stream alone (no model)."""
    from molw2s.pretraining.loader import BatchOrder, StepBatches, StepLayout, batch_stream

    order = BatchOrder(
        data.train.lengths, train.batch_size, seed=0, bucket_batches=train.bucket_batches, rank=0, world_size=1
    )
    layout = StepLayout.for_training(train, torch.device("cuda"))  # the GPU's layout, built on the host
    steps_data = StepBatches(data, order, seed=0, layout=layout)
    out: dict[str, Any] = {}
    for n in workers:
        stream = batch_stream(steps_data, start=0, stop=steps + 2 * n, workers=n)
        for _ in range(2 * n):  # every worker started and warm
            next(stream)
        start = time.perf_counter()
        padding = [1.0 - sum(p.n_tokens for p in parts) / sum(p.input_ids.numel() for p in parts) for parts in stream]
        elapsed = time.perf_counter() - start
        out[f"{n}_workers"] = {
            "batches_per_s": round(steps / elapsed, 2),
            "molecules_per_s": round(steps * train.batch_size / elapsed),
            "padding_share": round(float(np.mean(padding)), 4),
        }
    return out


def time_member(
    data: PretrainingData,
    member: MemberConfig,
    train: TrainConfig,
    *,
    warmup: int,
    steps: int,
    peak: float | None,
    profile_steps: int = 0,
) -> dict[str, Any]:
    """The real trainer's loop for ``warmup`` + ``steps`` steps: steps/s, real tokens/s,
    MFU from the lengths trained, data wait, peak memory; with ``profile_steps`` a
    torch.profiler trace of that many more steps."""
    from molw2s.pretraining.trainer import MemberTrainer

    member = member.model_copy(update={"steps": warmup + steps + profile_steps})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = MemberTrainer(member, train, data, tmp, config_hash="gpu-check", progress=False, tracking="none")
        device = trainer.dist.device
        trainer.wrap_model()
        trainer.model.train()
        stream = trainer.batches()
        for _ in range(warmup):
            trainer.train_step(next(stream))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        timed = timed_steps(trainer, stream, steps)
        elapsed, lengths = timed["seconds"], timed["lengths"]
        flops = model_flops(member.model, lengths)
        result: dict[str, Any] = {
            "member": member.name,
            "steps": steps,
            "steps_per_s": round(steps / elapsed, 3),
            "real_tokens_per_s": round(timed["tokens"] / elapsed),
            "molecules_per_s": round(steps * train.batch_size / elapsed),
            "mean_real_length": round(float(lengths.mean()), 2),
            "tflops_per_s": round(flops / elapsed / 1e12, 2),
            "mfu": round(flops / elapsed / peak, 4) if peak else None,
            "data_wait_share": round(timed["wait"], 4),
            "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            if device.type == "cuda"
            else None,
        }
        if profile_steps:
            result["profile"] = profile(trainer, stream, profile_steps, device)
    return result


def profile(trainer: Any, stream: Any, steps: int, device: torch.device) -> dict[str, Any]:
    """Top kernels, the attention kernel and the device's idle share over ``steps`` steps."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.train_step(next(stream))
        sync(device)
    cuda = device.type == "cuda"
    averages = prof.key_averages()
    key = (lambda e: e.device_time_total) if cuda else (lambda e: e.self_cpu_time_total)
    top = sorted(averages, key=key, reverse=True)[:15]
    # aten ops (_scaled_dot_product_{flash,efficient,cudnn}_attention, ..._attention_math) and
    # their kernels (flash_fwd..., fmha_cutlass... for the memory-efficient one)
    attention = sorted({e.key for e in averages if any(w in e.key for w in ("scaled_dot_product", "fmha", "flash"))})
    kinds = {
        "flash": any("flash" in k for k in attention),
        "mem_efficient": any("efficient" in k or "fmha" in k for k in attention),
        "math": any("math" in k for k in attention),
        "cudnn": any("cudnn" in k for k in attention),
    }
    result: dict[str, Any] = {
        "steps": steps,
        "top": [{"name": e.key[:90], "ms": round(key(e) / 1e3, 2), "calls": e.count} for e in top],
        "attention_ops": attention,
        "attention_kernel": [k for k, v in kinds.items() if v],
    }
    if cuda:
        result.update(idle_gaps(prof))
    return result


def idle_gaps(prof: Any) -> dict[str, Any]:
    """Share of the traced window with no kernel running, and the longest gaps (ms)."""
    from torch.autograd import DeviceType

    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == DeviceType.CUDA)
    if not spans:
        return {"idle_share": None}
    gaps, end = [], spans[0][1]
    for s, e in spans[1:]:
        if s > end:
            gaps.append(s - end)
        end = max(end, e)
    window = end - spans[0][0]
    return {
        "idle_share": round(sum(gaps) / window, 4),
        "longest_gaps_ms": [round(g / 1e3, 2) for g in sorted(gaps, reverse=True)[:5]],
        "window_ms": round(window / 1e3, 1),
    }


def side_by_side(
    data: PretrainingData, family: FamilyConfig, names: list[str], steps: int, peak: float | None
) -> dict[str, Any]:
    """The named members trained at once, one spawned process each (``parallel_members``)."""
    jobs = []
    with ProcessPoolExecutor(len(names), mp_context=get_context("spawn")) as pool:
        for name in names:
            member = family.member(name)
            jobs.append(pool.submit(_member_process, data, member, family.member_train(member), steps, peak))
        return {name: job.result() for name, job in zip(names, jobs)}


def _member_process(
    data: PretrainingData, member: MemberConfig, train: TrainConfig, steps: int, peak: float | None
) -> dict[str, Any]:
    torch.set_num_threads(1)
    return time_member(data, member, train, warmup=10, steps=steps, peak=peak)


def embedding(data: PretrainingData, size: ModelSizeConfig, out: Path, n: int, device: torch.device) -> dict[str, Any]:
    """Molecules/s of a randomly initialised encoder of ``size`` embedding ``n`` corpus
    molecules (mean pooling, batch 512, bf16 autocast), as the gpu config embeds."""
    from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
    from molw2s.encoders.model_files import save_model
    from molw2s.encoders.transformer import TransformerEncoder

    tok = data.tokenizer
    config = make_molbert_config(
        size, vocab_size=len(tok), max_length=data.config.max_length, pad_token_id=tok.pad_token_id, physchem=None
    )
    path = out / "embedding_model"
    save_model(MolBertForPretraining(config), tok, path)
    smiles = (data.train.smiles * (1 + n // max(len(data.train.smiles), 1)))[:n]
    result: dict[str, Any] = {"molecules": n, "hidden_size": size.hidden_size}
    for precision in ("bfloat16", "float32"):
        encoder = TransformerEncoder(path, pooling="mean", batch_size=512, device=device.type, precision=precision)
        encoder.encode(smiles[:1024])  # loads the model, warms the kernels
        sync(device)
        start = time.perf_counter()
        encoder.encode(smiles)
        sync(device)
        result[f"{precision}_molecules_per_s"] = round(n / (time.perf_counter() - start))
    return result


# -- the report -----------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    """The measurements as Markdown rows for docs/benchmarks.md."""
    env = report.get("environment", {})
    lines = [
        f"Device: {env.get('gpu', env.get('device'))}; peak bf16 {env.get('peak_bf16_tflops')} TFLOP/s; "
        f"torch {env.get('torch')} (CUDA {env.get('cuda')}), transformers {env.get('transformers')}; "
        f"{env.get('available_cpus')} cores; {'CPU smoke' if report['cpu_smoke'] else 'full scale'}.",
        "",
        "| measurement | value |",
        "|---|---|",
    ]

    def row(name: str, value: object) -> None:
        lines.append(f"| {name} | {value} |")

    e2e = report.get("e2e", {})
    if "stages_s" in e2e:
        row("gpu.yaml small family, stages (s)", ", ".join(f"{k} {v:.0f}" for k, v in e2e["stages_s"].items()))
    for label, stats in report.get("pipeline", {}).items():
        row(
            f"batch pipeline, {label.replace('_', ' ')}",
            f"{stats['molecules_per_s']:,} molecules/s, padding {stats['padding_share']:.1%}",
        )
    for label, r in report.get("strong", {}).items():
        if "steps_per_s" in r:
            mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "n/a"
            row(
                f"strong member, {label}",
                f"{r['steps_per_s']} steps/s, {r['real_tokens_per_s']:,} real tokens/s, MFU {mfu}, "
                f"data wait {r['data_wait_share']:.1%}, peak memory {r['peak_memory_gib']} GiB",
            )
    prof = report.get("strong", {}).get("packed", {}).get("profile", {})
    if prof:
        row("attention kernel (profiler)", ", ".join(prof["attention_kernel"]) or "none seen")
        row("device idle share (profiler)", prof.get("idle_share"))
    for name, r in report.get("side_by_side", {}).items():
        if isinstance(r, dict) and "steps_per_s" in r:
            row(f"side by side: {name}", f"{r['steps_per_s']} steps/s, {r['real_tokens_per_s']:,} real tokens/s")
    emb = report.get("embedding", {})
    if "bfloat16_molecules_per_s" in emb:
        row(
            "embedding bf16 / float32 (TF32)",
            f"{emb['bfloat16_molecules_per_s']:,} / {emb['float32_molecules_per_s']:,} molecules/s",
        )
    failed = [k for k, v in report.items() if isinstance(v, dict) and "error" in v]
    if failed:
        row("failed sections", ", ".join(failed))
    lines.append(f"\nTotal wall time {report['wall_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "gpu_check_out")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="holds corpora/ and moleculenet/ (default: .gpu-data or ../shared/data)",
    )
    parser.add_argument("--cpu-smoke", action="store_true", help="every section at tiny scale on the CPU")
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    parser.add_argument("--e2e-timeout", type=float, default=200.0, help="seconds for the end-to-end run")
    args = parser.parse_args()
    data_root = args.data_root or (
        REPO / ".gpu-data" if (REPO / ".gpu-data").is_dir() else REPO.parent / "shared" / "data"
    )
    tiny = args.cpu_smoke
    device = resolve_device("cpu" if tiny else "cuda")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {"cpu_smoke": tiny}

    def section(name: str, run: Callable[[], Any]) -> None:
        if name in args.skip:
            return
        start = time.perf_counter()
        print(f"[gpu_check] {name} ...", flush=True)
        try:
            report[name] = run()
        except Exception as exc:  # recorded; the other sections still run
            report[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
        print(f"[gpu_check] {name}: {time.perf_counter() - start:.1f} s", flush=True)
        report["wall_s"] = time.perf_counter() - started
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))

    section("environment", lambda: environment(device))
    section("e2e", lambda: end_to_end(args.out, data_root, tiny=tiny, timeout=args.e2e_timeout))

    family = FamilyConfig.model_validate(yaml.safe_load((CONFIGS / "family_gpu.yaml").read_text()))
    n_molecules = 600 if tiny else 100_000
    corpus = family.data.corpus.model_copy(update={"n": n_molecules})
    data_cfg = family.data.model_copy(update={"corpus": corpus, "mix_tasks": [], "max_val": 64})
    data = prepare_pretraining_data(data_cfg, data_dir=data_root / "corpora", progress=False)
    strong = family.member(family.strong)
    train = family.member_train(strong)
    if tiny:
        family = family.model_copy(
            update={"members": [m.model_copy(update={"model": ModelSizeConfig(**TINY_MODEL)}) for m in family.members]}
        )
        strong = family.member(family.strong)
        train = train.model_copy(update={"device": "cpu", "batch_size": 8, "data_workers": 1})
    peak = None if tiny else peak_bf16_flops(torch.cuda.get_device_name(device))
    warmup, steps = (2, 4) if tiny else (30, 300)

    section("pipeline", lambda: pipeline(data, train, [1, 2] if tiny else [7, 14], 6 if tiny else 200))

    def strong_runs() -> dict[str, Any]:
        packed = time_member(
            data, strong, train, warmup=warmup, steps=steps, peak=peak, profile_steps=2 if tiny else 10
        )
        padded_train = train.model_copy(update={"packing": None, "bucket_batches": 50})
        padded = time_member(data, strong, padded_train, warmup=warmup, steps=steps, peak=peak)
        return {"packed": packed, "padded_buckets": padded}

    section("strong", strong_runs)
    report["profile"] = report.get("strong", {}).get("packed", {}).get("profile", {"error": "no strong section"})
    if tiny:
        family = family.model_copy(update={"train": train})
    section("side_by_side", lambda: side_by_side(data, family, [family.strong, "weak_m"], 4 if tiny else 150, peak))
    size = ModelSizeConfig(**TINY_MODEL) if tiny else family.member(family.strong).model
    section("embedding", lambda: embedding(data, size, args.out, 2000 if tiny else 100_000, device))
    report["wall_s"] = time.perf_counter() - started
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
