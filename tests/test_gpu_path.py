"""The GPU path's correctness and host-side costs, shown on the CPU (issue 27): no host
sync in a training step, an embedding batch or a finetuning step; the 4-d padding mask
computes what the 2-d one does; a non-finite loss stops training before anything is
saved; batch workers start by fork / forkserver inside a spawned member process; a
compiled model is not recompiled when batch shapes change; rank 0 alone prepares the
data; CPU counts honour the affinity mask; TF32 on CUDA; the SGD head's few syncs."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from molw2s.encoders.model import MolBertForPretraining, make_molbert_config
from molw2s.encoders.model_size import ModelSizeConfig
from molw2s.errors import MolW2SError, TrainingError
from molw2s.pretraining import checkpoint as ckpt
from molw2s.pretraining import trainer as trainer_module
from molw2s.pretraining.config import MemberConfig, PretrainingDataConfig, TrainConfig
from molw2s.pretraining.corpus import PretrainingData, prepare_pretraining_data
from molw2s.pretraining.loader import StepLayout, make_batch
from molw2s.pretraining.trainer import MemberTrainer

TINY = ModelSizeConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32)
#: Tensor methods that make the host wait for a CUDA device
SYNCS = ("__bool__", "item", "__float__", "__int__", "tolist")


@contextlib.contextmanager
def host_syncs() -> Iterator[list[str]]:
    """Records every call of a Tensor method that waits for the device, while active."""
    calls: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in SYNCS}

    def recording(name: str, method: Callable[..., object]) -> Callable[..., object]:
        def wrapper(self: torch.Tensor, *args: object, **kwargs: object) -> object:
            calls.append(name)
            return method(self, *args, **kwargs)

        return wrapper

    for name, method in originals.items():
        setattr(torch.Tensor, name, recording(name, method))
    try:
        yield calls
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)


@pytest.fixture(scope="module")
def data() -> PretrainingData:
    config = PretrainingDataConfig(corpus={"name": "nci5k", "n": 120}, val_fraction=0.2, descriptor_jobs=1)
    return prepare_pretraining_data(config, progress=False)


def _trainer(data: PretrainingData, tmp_path: Path, steps: int = 6, **train: object) -> MemberTrainer:
    cfg = TrainConfig(batch_size=8, warmup_steps=2, num_threads=1, device="cpu", eval_every=100, **train)
    member = MemberConfig(name="m", model=TINY, steps=steps)
    return MemberTrainer(member, cfg, data, tmp_path / "m", config_hash="h", progress=False, tracking="none")


def test_a_training_step_never_waits_for_the_device(data, tmp_path, monkeypatch) -> None:
    # fused AdamW, as on CUDA (the CPU's default AdamW reads its step counters with item())
    make = trainer_module.make_adamw
    monkeypatch.setattr(trainer_module, "make_adamw", lambda model, **kw: make(model, **{**kw, "fused": True}))
    trainer = _trainer(data, tmp_path, micro_batches=2)
    trainer.model.train()
    stream = trainer.batches()
    steps = [next(stream), next(stream)]  # built on the host (by the batch workers on a GPU)
    with host_syncs() as calls:
        for parts in steps:
            trainer.train_step(parts)
    assert calls == []


def test_an_embedding_batch_never_waits_for_the_device(make_tiny_checkpoint, tmp_path) -> None:
    from molw2s.encoders.model import padding_attention_mask
    from molw2s.encoders.transformer import TransformerEncoder

    smiles = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccccc1", "N"]
    encoder = TransformerEncoder(make_tiny_checkpoint(tmp_path / "m", smiles), pooling="mean", device="cpu")
    encoder.encode(smiles)  # loads the model
    model = encoder._loaded["model@cpu"].model
    forward = model.forward
    with host_syncs() as calls:
        forward(
            input_ids=torch.tensor([[2, 5, 6, 3], [2, 5, 3, 0]]),
            attention_mask=padding_attention_mask(model.config, torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])),
        )
    assert calls == []


def test_a_finetuning_step_never_waits_for_the_device() -> None:
    from transformers import BertModel

    from molw2s.finetuning.model import RegressionModel

    config = make_molbert_config(TINY, vocab_size=30, max_length=32, pad_token_id=0, physchem=None)
    model = RegressionModel(BertModel(config, add_pooling_layer=False), n_outputs=2)
    ids = torch.randint(5, 30, (4, 9))
    mask = torch.ones(4, 9, dtype=torch.long)
    mask[1, 5:], mask[3, 2:] = 0, 0
    with host_syncs() as calls:
        loss = (model(ids, mask) ** 2).mean()
        loss.backward()
    assert calls == []


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_4d_padding_mask_computes_what_the_2d_mask_does(attention: str) -> None:
    from molw2s.encoders.model import padding_attention_mask

    config = make_molbert_config(
        TINY, vocab_size=40, max_length=64, pad_token_id=0, physchem=None, attn_implementation=attention
    )
    torch.manual_seed(0)
    model = MolBertForPretraining(config).eval()
    ids = torch.randint(5, 40, (6, 20))
    mask = torch.ones(6, 20, dtype=torch.long)
    for row, length in enumerate([20, 3, 17, 9, 20, 12]):
        mask[row, length:], ids[row, length:] = 0, 0
    labels = torch.where(torch.rand(6, 20) < 0.3, ids, -100).masked_fill(mask == 0, -100)
    for attention_mask in (mask, torch.ones_like(mask)):  # padded, and no padding at all
        two_d = model.bert(input_ids=ids, attention_mask=attention_mask).last_hidden_state
        four_d = model.bert(input_ids=ids, attention_mask=padding_attention_mask(config, attention_mask))
        real = attention_mask.bool()
        assert torch.equal(two_d[real], four_d.last_hidden_state[real])
    # and the model's own forward pass (which builds the 4-d mask) gives the loss of the 2-d one
    hidden = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state.flatten(0, 1)
    positions = torch.nonzero(labels.flatten() != -100).squeeze(1)
    expected = torch.nn.functional.cross_entropy(model.mlm(hidden[positions]), labels.flatten()[positions])
    assert torch.equal(model(ids, mask, labels=labels).mlm_loss, expected)


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(data, tmp_path, monkeypatch) -> None:
    trainer = _trainer(data, tmp_path, steps=10, checkpoint_every=3)
    forward = MolBertForPretraining.forward

    def diverging(self, *args, **kwargs):
        out = forward(self, *args, **kwargs)
        if trainer.step >= 4:  # the 5th update onwards
            out.mlm_loss = out.mlm_loss * float("nan")
        return out

    monkeypatch.setattr(MolBertForPretraining, "forward", diverging)
    with pytest.raises(TrainingError, match="not finite at step 5"):
        trainer.train()
    kept, _ = ckpt.latest_valid_checkpoint(tmp_path / "m" / "checkpoints")
    assert kept is not None and kept.name == ckpt.step_dir_name(3)
    assert not (tmp_path / "m" / "final").exists() and not (tmp_path / "m" / "COMPLETE.json").exists()
    weights = load_file(str(kept / ckpt.MODEL_FILE))
    assert all(bool(torch.isfinite(w).all()) for w in weights.values())


#: set in the member process before its workers start; a forked worker inherits it
_MARK = {"value": "not inherited"}


class _Probe(torch.utils.data.Dataset):
    def __getitem__(self, step: int) -> str:
        return _MARK["value"]


def _start_method_in_member(_: int) -> list[str]:
    from molw2s.pretraining.loader import batch_stream

    _MARK["value"] = "inherited"
    return list(batch_stream(_Probe(), start=0, stop=2, workers=1))  # type: ignore[arg-type]


def test_batch_workers_are_forked_inside_a_spawned_member_process() -> None:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:  # as parallel_members starts members
        assert pool.submit(_start_method_in_member, 0).result() == ["inherited", "inherited"]


def test_forkserver_once_cuda_is_initialised(monkeypatch) -> None:
    from molw2s.pretraining.loader import worker_context

    assert worker_context().get_start_method() == "fork"
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert worker_context().get_start_method() == "forkserver"


def test_a_compiled_member_is_not_recompiled_when_shapes_change(data, tmp_path, monkeypatch) -> None:
    graphs: list[int] = []

    def counting_backend(gm: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Callable[..., object]:
        graphs.append(1)
        return gm.forward

    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **kw: compile_(model, **{**kw, "backend": counting_backend}))
    torch._dynamo.reset()
    trainer = _trainer(data, tmp_path, steps=5, compile=True)
    trainer.wrap_model()
    trainer.model.train()
    widths = set()
    stream = trainer.batches()
    trainer.train_step(next(stream))
    after_first = len(graphs)
    for parts in stream:
        widths.add((parts[0].input_ids.shape[1], parts[0].n_masked))
        trainer.train_step(parts)
    torch._dynamo.reset()
    assert len(widths) > 1 and after_first > 0
    assert len(graphs) == after_first, f"recompiled {len(graphs) - after_first} times for {len(widths)} shapes"


def test_process_group_timeout_outlasts_nccls_default(monkeypatch) -> None:
    from molw2s.pretraining import distributed

    seen: dict[str, object] = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda **kw: seen.update(kw))
    dist = distributed.init_distributed("cpu")
    assert dist.rank == 1 and seen["backend"] == "gloo"
    assert seen["timeout"] == distributed.PROCESS_GROUP_TIMEOUT >= timedelta(minutes=30)
    assert timedelta(hours=24) <= distributed.DATA_WAIT_TIMEOUT


def _rank_process(rank: int, port: int, fail: bool) -> object:
    from molw2s.pretraining.distributed import from_main, init_distributed, shutdown_distributed

    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    dist = init_distributed("cpu")

    def prepare() -> dict[str, list[str]]:
        if rank != 0:
            raise AssertionError("a non-main rank prepared the data")
        if fail:
            raise ValueError("corpus missing")
        return {"vocab": ["C", "N", "O"]}

    try:
        return from_main(dist, prepare)
    except MolW2SError as exc:
        return f"stopped: {exc}"
    except ValueError as exc:
        return f"raised: {exc}"
    finally:
        shutdown_distributed()


@pytest.mark.parametrize("fail", [False, True])
def test_only_rank_0_prepares_the_data_and_hands_it_out(fail: bool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        results = [pool.submit(_rank_process, rank, port, fail) for rank in (0, 1)]
        got = [r.result(timeout=120) for r in results]
    if fail:
        assert got == ["raised: corpus missing", "stopped: rank 0 failed: corpus missing"]
    else:
        assert got == [{"vocab": ["C", "N", "O"]}] * 2


def test_cpu_counts_follow_the_affinity_mask(monkeypatch) -> None:
    from molw2s.encoders.device import available_cpus
    from molw2s.pretraining.loader import default_workers
    from molw2s.pretraining.parallel import threads_per_member

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert available_cpus() <= 3
    assert threads_per_member(1) == available_cpus()
    assert default_workers(torch.device("cuda")) == available_cpus() - 1


def test_cuda_devices_come_with_tf32(monkeypatch) -> None:
    from molw2s.encoders.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    # set and restored by hand: these flags live behind __getattr__ / properties, which
    # pytest >= 9.2's monkeypatch cannot restore (it would leave is_available patched)
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        assert resolve_device("cuda") == torch.device("cuda", 0)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_the_last_layer_is_embedded_without_the_other_layers(make_tiny_checkpoint, tmp_path, monkeypatch) -> None:
    from transformers import BertModel

    from molw2s.encoders.transformer import TransformerEncoder

    smiles = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccccc1", "N"]
    path = make_tiny_checkpoint(tmp_path / "m", smiles, layers=2)
    asked: list[object] = []
    forward = BertModel.forward

    def recording(self, *args, **kwargs):
        asked.append(kwargs.get("output_hidden_states"))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(BertModel, "forward", recording)
    last = TransformerEncoder(path, pooling="mean", layer=-1, device="cpu").encode(smiles)
    assert asked and not any(asked)
    by_index = TransformerEncoder(path, pooling="mean", layer=1, device="cpu").encode(smiles)
    second = TransformerEncoder(path, pooling="mean", layer=2, device="cpu").encode(smiles)
    np.testing.assert_array_equal(last, second)
    assert not np.array_equal(last, by_index)


def test_the_sgd_head_waits_for_the_device_every_hundred_epochs_only() -> None:
    from molw2s.w2s.heads import SGDHead

    rng = np.random.default_rng(0)
    H, y = rng.normal(size=(64, 8)), rng.normal(size=64)
    with host_syncs() as calls:
        SGDHead(lr=0.01, batch_size=16, epochs=250, scale="none").fit(H, y)
    assert len(calls) <= 5, calls  # epochs 100, 200, 250 and the bias read at the end
    with pytest.raises(MolW2SError, match="diverged at epoch 1 "):
        SGDHead(lr=50.0, batch_size=16, epochs=150, scale="none").fit(100.0 * H, y)


def test_micro_batches_hold_molecules_of_similar_length_padded_to_their_own_longest(data) -> None:
    rows = np.arange(32)
    batch = make_batch(data, rows, seed=3)
    parts = StepLayout(micro_batches=4).split(batch, data.tokenizer.pad_token_id)
    widths = [p.input_ids.shape[1] for p in parts]
    assert widths == sorted(widths) and widths[0] < batch.input_ids.shape[1]
    for part in parts:
        assert part.input_ids.shape[1] == int(part.attention_mask.sum(1).max())
    assert sum(p.n_tokens for p in parts) == batch.n_tokens
    assert sum(p.n_masked for p in parts) == batch.n_masked


#: the length policy's target: at most this share of the positions a GPU step computes
#: is padding (measured 5.6% on MOSES at batch 256; length buckets gave 16%, docs/pretraining.md)
PADDING_TARGET = 0.07


def test_gpu_batches_stay_under_the_padding_target(shared_data) -> None:
    from molw2s.config import load_config
    from molw2s.pretraining.config import FamilyConfig
    from molw2s.pretraining.loader import BatchOrder, StepBatches

    family = load_config(FamilyConfig, Path(__file__).parents[1] / "configs" / "family_gpu.yaml", [])
    train = family.train
    config = PretrainingDataConfig(corpus={"name": "moses", "n": 3000}, physchem=False, max_val=64, descriptor_jobs=1)
    moses = prepare_pretraining_data(config, data_dir=shared_data / "corpora", progress=False)

    def padding(bucket_batches: int, layout: StepLayout) -> float:
        order = BatchOrder(
            moses.train.lengths, train.batch_size, seed=0, bucket_batches=bucket_batches, rank=0, world_size=1
        )
        steps = StepBatches(moses, order, seed=0, layout=layout)
        parts = [p for step in range(4) for p in steps[step]]
        return 1.0 - sum(p.n_tokens for p in parts) / sum(p.input_ids.numel() for p in parts)

    chosen = padding(train.bucket_batches, StepLayout.for_training(train, torch.device("cuda")))
    buckets = padding(50, StepLayout(pad_multiple=8))  # canonical-length buckets of randomised SMILES
    assert chosen <= PADDING_TARGET < buckets, (chosen, buckets)


def test_benchmark_flops_count_the_lengths_trained(data) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from bench_pretrain import model_flops, real_lengths

    rows = np.arange(32)
    batch = make_batch(data, rows, seed=3)  # randomised SMILES
    padded = real_lengths([batch])
    packed = real_lengths(StepLayout(micro_batches=2, packing=128).split(batch, data.tokenizer.pad_token_id))
    assert sorted(padded) == sorted(packed) and padded.sum() == batch.n_tokens
    canonical = data.train.lengths[rows]
    assert not np.array_equal(np.sort(padded), np.sort(canonical))
    assert model_flops(TINY, padded) != model_flops(TINY, canonical)
