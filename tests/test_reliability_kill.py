"""Killed and interrupted runs (issue 28): no worker outlives its main process, an interrupt
stops within seconds with a line saying how to resume, and a rerun ends identical.

Each test runs the real ``molw2s`` command in its own session, waits (polling, bounded)
until its workers are busy, signals the main pid alone, and then checks every process that
descended from it by pid. Whatever happens, the session is killed at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from molw2s.encoders.model_files import MODEL_FILE
from molw2s.pretraining.config import FamilyConfig
from molw2s.pretraining.family import family_models, pretrain_family

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

#: two members trained side by side, long enough (about 10 s on one core) to be caught mid-way
KILL_FAMILY = {
    "name": "tiny",
    "strong": "m",
    "parallel_members": 2,
    "data": {"corpus": {"name": "nci5k", "n": 120}, "val_fraction": 0.2, "physchem": False},
    "train": {"batch_size": 8, "warmup_steps": 2, "checkpoint_every": 10, "eval_every": 100, "num_threads": 1},
    "members": [
        {
            "name": "m",
            "model": {"num_layers": 1, "hidden_size": 16, "num_heads": 2, "intermediate_size": 32},
            "steps": 400,
        },
        {
            "name": "w",
            "model": {"num_layers": 1, "hidden_size": 8, "num_heads": 2, "intermediate_size": 16},
            "steps": 400,
        },
    ],
}


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of ``pid`` from /proc, None when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None and stat[0] != "Z":
            parents[int(entry.name)] = stat[1]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """The ``pids`` still running (a zombie has finished)."""
    return {pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] != "Z"}


def wait_for(condition: Callable[[], object], what: str, timeout: float) -> None:
    """Poll ``condition`` every 0.1 s until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def molw2s_command(*args: str, cwd: Path, cache: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``molw2s ARGS`` in a new session (with ``cache`` as its cache), its stderr in
    ``cwd/stderr.txt`` (a pipe would stay open as long as any worker lives); the session is
    SIGKILLed on the way out."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if cache is not None:
        env["MOLW2S_DATA_DIR"] = str(cache)
    with open(cwd / "stderr.txt", "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "molw2s.cli", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)


def signal_and_check_no_child_survives(proc: subprocess.Popen[bytes], signum: int, workers: set[int], cwd: Path) -> str:
    """Send ``signum`` to the main pid alone (``molw2s_command`` ran in ``cwd``); it must
    exit, and every process below it must be gone within 30 s (checked by pid). Returns
    the main process's stderr."""
    assert workers, "no worker processes were running"
    started = time.monotonic()
    os.kill(proc.pid, signum)
    proc.wait(timeout=120)
    stopped_after = time.monotonic() - started
    wait_for(lambda: not alive(workers), f"workers {sorted(alive(workers))} to exit", timeout=30)
    stderr = (cwd / "stderr.txt").read_text()
    if signum == signal.SIGINT:
        assert proc.returncode == 130, stderr
        assert stopped_after < 20, f"SIGINT took {stopped_after:.0f} s to stop the run"
    if signum == signal.SIGTERM:
        assert proc.returncode == 143, stderr
    return stderr


def _weights(run_dir: Path, family: FamilyConfig) -> dict[str, dict[str, torch.Tensor]]:
    return {name: load_file(str(path / MODEL_FILE)) for name, path in family_models(family, run_dir).items()}


@pytest.fixture(scope="module")
def reference_family(tmp_path_factory: pytest.TempPathFactory) -> tuple[FamilyConfig, dict]:
    """The kill family trained without interruption (one member at a time, in this process:
    the same weights as side by side)."""
    family = FamilyConfig.model_validate({**KILL_FAMILY, "parallel_members": 1})
    run_dir = tmp_path_factory.mktemp("reference")
    pretrain_family(family, run_dir, progress=False, tracking="none")
    return family, _weights(run_dir, family)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["kill", "term", "int"])
def test_a_signalled_pretrain_leaves_no_member_running_and_resumes_identically(tmp_path, reference_family, signum):
    family, expected = reference_family
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(KILL_FAMILY))
    run_dir = tmp_path / "run"
    with molw2s_command(
        "pretrain", "family.yaml", "--run-dir", "run", "--no-progress", "--tracking", "none", cwd=tmp_path
    ) as proc:

        def members_training() -> bool:
            return all(any((run_dir / m / "checkpoints").glob("step-*")) for m in ("m", "w"))

        wait_for(members_training, "both members to write a checkpoint", timeout=240)
        workers = descendants(proc.pid)
        stderr = signal_and_check_no_child_survives(proc, signum, workers, tmp_path)
    unfinished = [m for m in ("m", "w") if not (run_dir / m / "COMPLETE.json").exists()]
    assert unfinished, "every member finished: the signal stopped nothing (or the run waited for them)"
    if signum == signal.SIGINT:
        assert stderr.strip().splitlines()[-1].startswith("interrupted: `molw2s pretrain family.yaml"), stderr
        assert "rerun the same command to resume" in stderr
    snapshot = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    time.sleep(0.5)
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == snapshot  # nobody writes there any more

    pretrain_family(family, run_dir, progress=False, tracking="none")  # the rerun resumes
    resumed = _weights(run_dir, family)
    assert resumed.keys() == expected.keys()
    for name, tensors in expected.items():
        assert all(torch.equal(tensors[k], resumed[name][k]) for k in tensors), name


#: 2 seeds x 8 weak fingerprints = 16 cells: computed by two forked workers
KILL_SWEEP = {
    "name": "killsweep",
    "strong": "ecfp4-1024",
    "weak": ["ecfp2-64", "ecfp2-128", "ecfp2-256", "ecfp4-64", "ecfp4-128", "ecfp4-256", "maccs", "ecfp6-512"],
    "tasks": ["nci_logp"],
    "sweep_jobs": 2,
    "splits": {"seeds": [0, 1]},
    "evaluation": {"n_boot": 50},
}


@pytest.fixture(scope="module")
def sweep_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for every run of the kill sweep (its entries are content-hashed)."""
    return tmp_path_factory.mktemp("sweep_cache")


def _sweep_dir(root: Path) -> Path:
    root.mkdir()
    (root / "sweep.yaml").write_text(yaml.safe_dump(KILL_SWEEP))
    return root


def _run_sweep(cwd: Path, cache: Path) -> str:
    """``molw2s run`` of the kill sweep to the end; its cells.csv."""
    with molw2s_command("run", "sweep.yaml", "--no-progress", cwd=cwd, cache=cache) as proc:
        proc.wait(timeout=600)
    assert proc.returncode == 0, (cwd / "stderr.txt").read_text()
    return (cwd / "runs" / "killsweep" / "report" / "cells.csv").read_text()


@pytest.fixture(scope="module")
def reference_sweep(tmp_path_factory: pytest.TempPathFactory, sweep_cache: Path) -> str:
    """cells.csv of the kill sweep run without interruption."""
    return _run_sweep(_sweep_dir(tmp_path_factory.mktemp("sweep") / "reference"), sweep_cache)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_a_signalled_sweep_leaves_no_worker_running_and_resumes_identically(
    tmp_path, sweep_cache, reference_sweep, signum
):
    run_dir = _sweep_dir(tmp_path / "killed")
    cells = run_dir / "runs" / "killsweep" / "cells"

    def workers_busy() -> bool:  # both forked, and a first cell back
        return len(descendants(proc.pid)) >= 2 and any(cells.glob("*.json"))

    with molw2s_command("run", "sweep.yaml", "--no-progress", cwd=run_dir, cache=sweep_cache) as proc:
        wait_for(workers_busy, "two forked sweep workers and a first cell", timeout=240)
        signal_and_check_no_child_survives(proc, signum, descendants(proc.pid), run_dir)
    assert len(list(cells.glob("*.json"))) < 16, "the sweep finished before the signal"
    assert _run_sweep(run_dir, sweep_cache) == reference_sweep
