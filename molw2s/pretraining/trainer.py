"""The pretraining loop of one family member (single process or torchrun DDP, same code).

Per step: a length-bucketed batch (order a pure function of seed and epoch), fresh
randomised SMILES (augmentation), BERT masking, dynamic padding, MLM + PhysChem loss,
AdamW with warmup and decay, gradient clipping. Everything random on the data side is
drawn from generators seeded by ``(seed, step, rank)``; dropout uses torch's global RNG,
whose state is checkpointed. So a run killed at any moment and resumed from its last
complete checkpoint reproduces the uninterrupted run exactly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from tqdm.auto import tqdm

from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
from molw2s.encoders.model_files import save_model
from molw2s.errors import ConfigError, TrainingError
from molw2s.io import quarantine, read_manifest, verify_dir, write_json_atomic, write_verified_dir
from molw2s.pretraining import checkpoint as ckpt
from molw2s.pretraining.card import member_card
from molw2s.pretraining.config import MemberConfig, TrainConfig
from molw2s.pretraining.corpus import PretrainingData
from molw2s.pretraining.distributed import DistContext, init_distributed
from molw2s.pretraining.evaluation import evaluate
from molw2s.pretraining.loader import Batch, BatchOrder, StepBatches, StepLayout, batch_stream, default_workers
from molw2s.progress import show_progress
from molw2s.tracking import LOG_DIR, NullLogger, ScalarLogger, Tracking, finite_scalars, open_logger
from molw2s.training import make_adamw, warmup_decay_schedule

log = logging.getLogger(__name__)

COMPLETE = "COMPLETE.json"
#: "no non-finite loss yet" in :attr:`MemberTrainer.nonfinite_step`
_ALL_FINITE = 2**62


def build_model(member: MemberConfig, data: PretrainingData, seed: int) -> MolBertForPretraining:
    """A freshly initialised member (initialisation seeded by ``seed``)."""
    config = make_molbert_config(
        member.model,
        vocab_size=len(data.tokenizer),
        max_length=data.config.max_length,
        pad_token_id=data.tokenizer.pad_token_id,
        physchem=data.physchem_stats,
    )
    torch.manual_seed(seed)
    return MolBertForPretraining(config)


def autocast_context(device: torch.device, cfg: TrainConfig) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA when ``cfg.bf16``; on the CPU when ``cfg.bf16_cpu`` is true
    (with a warning on a CPU without native bfloat16, where it is slower than float32) or
    ``auto`` and the CPU has it."""
    if device.type == "cuda" and cfg.bf16:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if device.type == "cpu" and cfg.bf16_cpu:
        native = cpu_has_native_bf16()
        if cfg.bf16_cpu == "auto" and not native:
            log.info("train.bf16_cpu=auto: no native bfloat16 on this CPU; training in float32")
            return contextlib.nullcontext()
        if not native:
            log.warning("train.bf16_cpu: this CPU has no native bfloat16 (AVX512-BF16 or AMX); expect slower steps")
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes in bfloat16 natively (AVX512-BF16 or AMX), as torch sees it."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if check is not None)


def is_finished(member_dir: str | Path, config_hash: str, snapshots: Sequence[int] = ()) -> bool:
    """True when the member's final model and every snapshot are complete and intact, and
    were trained with ``config_hash``.

    A model directory that does not match its manifest is moved aside (reported once) and
    the member counts as unfinished, so it is trained again (deterministically: the same
    weights). A completion marker from a different configuration is an error, not a
    silent rerun.
    """
    member_dir = Path(member_dir)
    marker = member_dir / COMPLETE
    if not marker.is_file():
        return False
    models = [member_dir / "final", *(member_dir / "snapshots" / ckpt.step_dir_name(s) for s in snapshots)]
    damaged = [(path, verify_dir(path)) for path in models]
    damaged = [(path, why) for path, why in damaged if why is not None]
    if damaged:
        for path, why in damaged:
            if path.exists():
                with contextlib.suppress(FileNotFoundError):  # another data-parallel rank moved it first
                    quarantine(path, why or "")
        marker.unlink(missing_ok=True)
        log.warning("%s: %d model(s) missing or corrupt; training the member again", member_dir.name, len(damaged))
        return False
    done = json.loads(marker.read_text())
    if done.get("config_hash") != config_hash:
        raise ConfigError(
            f"{member_dir} holds a finished model of a different configuration "
            f"(hash {done.get('config_hash')} != {config_hash}); use another --run-dir or delete it"
        )
    return True


class MemberTrainer:
    """Trains one member into ``member_dir``; resumable; see the module docstring."""

    def __init__(
        self,
        member: MemberConfig,
        train: TrainConfig,
        data: PretrainingData,
        member_dir: str | Path,
        *,
        config_hash: str,
        progress: bool = True,
        on_step: Callable[[int], None] | None = None,
        dist: DistContext | None = None,
        tracking: Tracking = "auto",
        bar_position: int | None = None,
    ) -> None:
        self.member, self.cfg, self.data = member, train, data
        self.dir = Path(member_dir)
        self.config_hash = config_hash
        self.progress = progress
        self.bar_position = bar_position
        self.tracking = tracking
        self.on_step = on_step
        self.dist = dist or init_distributed(train.device)
        if train.batch_size % self.dist.world_size:
            raise ConfigError(
                f"train.batch_size={train.batch_size} must be divisible by the {self.dist.world_size} ranks"
            )
        self.per_rank_batch = train.batch_size // self.dist.world_size
        if train.num_threads:
            torch.set_num_threads(train.num_threads)
        device = self.dist.device
        cuda = device.type == "cuda"
        self.autocast = autocast_context(device, train)
        self.model: MolBertForPretraining = build_model(member, data, train.seed).to(device)  # type: ignore[arg-type]
        self.net: torch.nn.Module = self.model  # DDP-wrapped / compiled by wrap_model()
        self.optimizer = make_adamw(
            self.model, lr=train.lr, weight_decay=train.weight_decay, betas=train.betas, eps=train.eps, fused=cuda
        )
        self.scheduler = warmup_decay_schedule(
            self.optimizer,
            total=member.steps,
            warmup=train.warmup_steps,
            decay=train.decay,
            min_ratio=train.min_lr_ratio,
        )
        self.step = 0
        # the first step whose loss was not finite, kept on the device (read at the loop's syncs)
        self.nonfinite_step = torch.full((), _ALL_FINITE, dtype=torch.long, device=device)
        self.history: list[dict[str, Any]] = []
        self.counters = {"tokens": 0, "unk_tokens": 0, "overlong": 0}
        self.order = BatchOrder(
            data.train.lengths,
            self.per_rank_batch,
            seed=train.seed,
            bucket_batches=train.bucket_batches,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        self.workers = default_workers(device) if train.data_workers is None else train.data_workers
        if train.packing is not None and train.packing < data.config.max_length:
            raise ConfigError(
                f"train.packing={train.packing} is shorter than data.max_length={data.config.max_length}: "
                "a molecule must fit in one packed row"
            )
        if not self.order.steps_per_epoch:
            raise ConfigError(
                f"{len(data.train.ids)} training molecules give no full batch of {self.per_rank_batch} per rank"
            )

    # -- checkpoints --------------------------------------------------------------------
    def resume(self) -> int:
        """Load the newest complete checkpoint (skipping corrupt ones); return its step."""
        path, skipped = ckpt.latest_valid_checkpoint(self.dir / "checkpoints")
        for bad, why in skipped:
            log.warning("%s: ignoring checkpoint %s (%s)", self.member.name, bad.name, why)
        if path is None:
            return 0
        meta = read_manifest(path)
        if meta.get("config_hash") != self.config_hash:
            raise ConfigError(
                f"{path} was written by a different configuration; use another --run-dir or delete {self.dir}"
            )
        state = ckpt.load_training_checkpoint(
            path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler, rank=self.dist.rank
        )
        if state["world_size"] != self.dist.world_size:
            log.warning(
                "resuming with %d ranks instead of %d: the data order changes",
                self.dist.world_size,
                state["world_size"],
            )
        self.step = int(meta["step"])
        self.history = state["history"]
        self.counters = state["counters"]
        log.info("%s: resumed from %s", self.member.name, path)
        return self.step

    def _save_checkpoint(self) -> None:
        rng = self.dist.gather(ckpt.capture_rng())
        if self.dist.is_main:
            state = {
                "step": self.step,
                "config_hash": self.config_hash,
                "world_size": self.dist.world_size,
                "history": self.history,
                "counters": self.counters,
            }
            root = self.dir / "checkpoints"
            ckpt.save_training_checkpoint(
                root / ckpt.step_dir_name(self.step),
                model=self.model,
                tokenizer=self.data.tokenizer,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                state=state,
                rng=rng,
            )
            ckpt.prune_checkpoints(root, self.cfg.keep_checkpoints)
        self.dist.barrier()

    def _export(self, target: Path, metrics: dict[str, Any]) -> None:
        """A model-only HF directory (final model or named snapshot)."""
        if self.dist.is_main:
            meta = {"kind": "model", "member": self.member.name, "step": self.step, "metrics": metrics}
            card = member_card(
                self.member,
                self.cfg,
                self.data,
                step=self.step,
                n_params=sum(p.numel() for p in self.model.parameters()),
                metrics=metrics,
                counters=self.counters,
            )
            write_verified_dir(target, lambda tmp: save_model(self.model, self.data.tokenizer, tmp, card=card), meta)
        self.dist.barrier()

    def _evaluate(self, train_loss: float) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if self.dist.is_main:
            metrics = {
                "step": self.step,
                "train_loss": train_loss,
                **evaluate(self.model, self.data, batch_size=self.cfg.eval_batch_size, autocast=self.autocast),
            }
            self.history.append(metrics)
            write_json_atomic(self.dir / "metrics.json", self.history)
        self.dist.barrier()
        return metrics

    # -- the loop -----------------------------------------------------------------------
    def wrap_model(self) -> None:
        """What the steps call (``self.net``): the model, DDP-wrapped when data-parallel,
        compiled when ``train.compile``."""
        self.net = self.model
        if self.dist.distributed:
            ids = [self.dist.device] if self.dist.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if self.cfg.compile:
            # dynamic shapes from the first call: batch widths and masked-token counts change
            # every step, and a shape-specialised graph would be recompiled for each new one
            compiled = torch.compile(self.net, mode=self.cfg.compile_mode, dynamic=True)
            self.net = cast("torch.nn.Module", compiled)

    def batches(self) -> Iterator[list[Batch]]:
        """The micro-batches of each step from the current one to the end (built by
        ``data_workers`` processes)."""
        cuda = self.dist.device.type == "cuda"
        layout = StepLayout.for_training(self.cfg, self.dist.device)
        steps = StepBatches(self.data, self.order, seed=self.cfg.seed, layout=layout)
        return batch_stream(steps, start=self.step, stop=self.member.steps, workers=self.workers, pin_memory=cuda)

    def train_step(self, parts: list[Batch]) -> torch.Tensor:
        """One optimisation step on the micro-batches of the current step; returns the
        (detached) loss.

        With several micro-batches the gradients add up (DDP synchronises on the last only):
        each one's MLM loss is weighted by its share of the step's masked tokens and its
        PhysChem loss by its share of the molecules, so the gradient is the whole batch's,
        up to float rounding and dropout draws. Every count is known on the host and the
        loss's finiteness is recorded on the device (:meth:`check_finite` reads it): nothing
        here waits for the device.
        """
        self.counters["tokens"] += sum(p.n_tokens for p in parts) * self.dist.world_size
        self.counters["unk_tokens"] += sum(p.n_unk for p in parts)
        self.counters["overlong"] += sum(p.n_overlong for p in parts)
        n_masked = max(sum(p.n_masked for p in parts), 1)
        n_molecules = sum(p.n_molecules for p in parts)
        loss = torch.zeros((), device=self.dist.device)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            ddp = cast("torch.nn.parallel.DistributedDataParallel", self.net)
            sync = contextlib.nullcontext() if last or not self.dist.distributed else ddp.no_sync()
            with sync:
                with self.autocast:
                    out = self.net(**part.to(self.dist.device).model_inputs())
                mlm = self.cfg.mlm_weight * out.mlm_loss
                physchem = None if out.physchem_loss is None else self.cfg.physchem_weight * out.physchem_loss
                if len(parts) > 1:
                    mlm = mlm * (part.n_masked / n_masked)
                    physchem = None if physchem is None else physchem * (part.n_molecules / n_molecules)
                total = mlm if physchem is None else mlm + physchem
                total.backward()
            loss = loss + total.detach()
        if self.cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        seen = torch.isfinite(loss) | (self.nonfinite_step != _ALL_FINITE)
        self.nonfinite_step = torch.where(seen, self.nonfinite_step, self.step)
        return loss

    def check_finite(self) -> None:
        """Raise :class:`TrainingError` naming the first step (on any rank) whose loss was
        not finite; called before anything is written, so the newest checkpoint on disk
        holds finite weights. Waits for the device."""
        first = self.nonfinite_step.clone()
        if self.dist.distributed:
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
        step = int(first)
        if step != _ALL_FINITE:
            kept, _ = ckpt.latest_valid_checkpoint(self.dir / "checkpoints")
            raise TrainingError(
                f"{self.member.name}: the loss was not finite at step {step} (lower train.lr, or "
                f"train.bf16=false); nothing after it was saved; newest checkpoint: {kept or 'none'}"
            )

    def train(self) -> dict[str, Any]:
        """Run (or resume) to ``member.steps``; export snapshots and the final model.

        Scalars go to ``tracking`` (see :mod:`molw2s.tracking`) under ``<member>/tensorboard``:
        ``train/loss`` (mean of the last 10 steps), ``train/lr``, ``train/tokens_per_s`` and
        ``eval/*`` (held-out masked-token accuracy and loss, PhysChem R^2).
        """
        self.resume()
        self.wrap_model()
        self.model.train()
        tracker = (
            open_logger(self.tracking, self.dir / LOG_DIR, start_step=self.step) if self.dist.is_main else NullLogger()
        )
        try:
            metrics = self._train_loop(tracker)
        finally:
            tracker.close()
        self._export(self.dir / "final", metrics)
        if self.dist.is_main:
            write_json_atomic(
                self.dir / COMPLETE,
                {
                    "config_hash": self.config_hash,
                    "steps": self.member.steps,
                    "metrics": metrics,
                    "counters": self.counters,
                },
            )
            # the final model is complete: optimiser states are no longer needed
            shutil.rmtree(self.dir / "checkpoints", ignore_errors=True)
        self.dist.barrier()
        return metrics

    def _train_loop(self, tracker: ScalarLogger) -> dict[str, Any]:
        total = self.member.steps
        show = self.progress and self.dist.is_main
        bar = tqdm(
            total=total,
            initial=self.step,
            desc=self.member.name,
            unit="step",
            disable=not show_progress(show),
            position=self.bar_position,
        )
        loss_sum, loss_n = torch.zeros((), device=self.dist.device), 0
        window_tokens, window_start = self.counters["tokens"], time.perf_counter()
        window_loss, window_n = 0.0, 0  # loss_sum and loss_n at the last sync
        metrics: dict[str, Any] = {}
        for parts in self.batches():
            loss_sum, loss_n = loss_sum + self.train_step(parts), loss_n + 1
            is_snapshot = self.step in self.member.snapshots
            evaluates = self.step % self.cfg.eval_every == 0 or self.step == total or is_snapshot
            saves = self.step % self.cfg.checkpoint_every == 0 and self.step < total
            if self.step % 10 == 0 or self.step == total or evaluates or saves:  # syncs with the GPU only here
                self.check_finite()
            if self.step % 10 == 0 or self.step == total:
                elapsed = max(time.perf_counter() - window_start, 1e-9)
                tok_s = (self.counters["tokens"] - window_tokens) / elapsed
                total_loss = float(loss_sum)
                bar.set_postfix(loss=f"{total_loss / loss_n:.3f}", tok_s=f"{tok_s:,.0f}")
                tracker.log_scalars(
                    self.step,
                    {
                        "train/loss": (total_loss - window_loss) / (loss_n - window_n),
                        "train/lr": float(self.scheduler.get_last_lr()[0]),
                        "train/tokens_per_s": tok_s,
                    },
                )
                window_tokens, window_start = self.counters["tokens"], time.perf_counter()
                window_loss, window_n = total_loss, loss_n
            bar.update(1)

            if evaluates:
                metrics = self._evaluate(float(loss_sum) / loss_n)
                tracker.log_scalars(
                    self.step,
                    {f"eval/{k}": v for k, v in finite_scalars(metrics).items() if k not in ("step", "train_loss")},
                )
                loss_sum, loss_n = torch.zeros_like(loss_sum), 0
                window_loss, window_n = 0.0, 0
            if is_snapshot:
                self._export(self.dir / "snapshots" / ckpt.step_dir_name(self.step), metrics)
            if saves:
                self._save_checkpoint()
            if self.on_step is not None:
                self.on_step(self.step)
        bar.close()
        return metrics
