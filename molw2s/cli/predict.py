"""``molw2s predict`` (M and PredGap_hat from representations) and ``molw2s w2s`` (one W2S
cell on arrays or on a task's cached embeddings).

Both read their settings from the same model as ``molw2s run``
(:class:`molw2s.experiment.config.CellSettings`, so the defaults are the same): a
``--config`` YAML (an experiment config works: its other keys are ignored) plus
``key=value`` overrides such as ``w2s.head.beta=0.1 predictor.primary.rule=tau``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from molw2s.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from molw2s.experiment.cell import CellSplit
    from molw2s.experiment.config import CellSettings

OVERRIDES_HELP = "key=value settings, e.g. w2s.head.beta=0.1 w2s.head.scale=none predictor.primary.rule=tau"
CONFIG_HELP = "YAML with cell settings (splits, w2s, embedding, predictor), e.g. configs/moleculenet.yaml."


def register(app: typer.Typer) -> None:
    """Add the ``predict`` and ``w2s`` commands to ``app``."""
    app.command("predict")(predict)
    app.command("w2s")(w2s)


def load_cell_settings(path: Path | None, overrides: list[str] | None) -> CellSettings:
    """Cell settings from a YAML file (keys outside the cell settings ignored) and overrides."""
    from molw2s.config import apply_overrides, build_model, load_yaml
    from molw2s.experiment.config import CellSettings

    data = load_yaml(path) if path is not None else {}
    data = {k: v for k, v in data.items() if k in CellSettings.model_fields}
    return build_model(CellSettings, apply_overrides(data, overrides or []), source=str(path or "settings"))


def predict(
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP),
    weak: Path = typer.Option(
        ..., "--weak", help="Weak representation on D_s: .npy, .npz or file.npz:KEY (n_hat x d_w)."
    ),
    strong: Path = typer.Option(..., "--strong", help="Strong representation on the same rows (n_hat x d_s)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Gold labels on D_s (n_hat,): adds PredGap_hat."),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Predict W2S performance from representations: M, M_F, PredGap_hat.

    M = ||P_s (I - P_w)||_op and M_F = ||P_s (I - P_w)||_F^2 need no labels; --labels
    adds PredGap_hat = ||P_s (I - P_w) y||^2 / n_hat (theory.md sections 3-4). The betas
    are those of w2s.weak_head (default: w2s.head) and w2s.head, the k rule
    predictor.primary, the scaling w2s.head.scale. Bare arrays have no D_w: both trace
    factors are computed on these rows, whereas `molw2s w2s` and `molw2s run` take P_w's
    from the weak head's rows (D_w); with trace scaling the numbers can differ.
    """
    from molw2s.theory.predictor import predict_w2s

    settings = load_cell_settings(config, overrides)
    H_w = _load_matrix(weak, "weak representation", min_rows=2)
    H_s = _load_matrix(strong, "strong representation", min_rows=2)
    y = None if labels is None else _load_vector(labels, "labels", n_rows=len(H_w))
    rule = settings.predictor.primary
    result = predict_w2s(
        H_w,
        H_s,
        beta_w=settings.w2s.weak.beta,
        beta_s=settings.w2s.head.beta,
        y=y,
        rule=rule.rule,
        tau=rule.tau,
        k_w=rule.k_w,
        k_s=rule.k_s,
        c=rule.c,
        scale=settings.w2s.head.scale,
    )
    _emit(result.to_dict(), as_json, first=("M", "M_F", "predgap_hat"))


def w2s(
    overrides: Optional[list[str]] = typer.Argument(None, help=OVERRIDES_HELP),
    weak: Optional[Path] = typer.Option(None, "--weak", help="Weak representation of every row (.npy/.npz)."),
    strong: Optional[Path] = typer.Option(None, "--strong", help="Strong representation of every row."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Gold labels of every row (.npy/.npz)."),
    split: Optional[Path] = typer.Option(
        None, "--split", help='With arrays: split JSON {"train","valid","test"} (default: splits.method random).'
    ),
    task: Optional[str] = typer.Option(None, "--task", help="Task name (ESOL, FreeSolv, Lipop, ...) or CSV path."),
    weak_encoder: Optional[str] = typer.Option(None, "--weak-encoder", help="With --task: weak encoder (e.g. maccs)."),
    strong_encoder: Optional[str] = typer.Option(None, "--strong-encoder", help="With --task: strong encoder spec."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="With --task: directory holding the task files."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Split seed (default: the first of splits.seeds)."),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP),
    no_predictor: bool = typer.Option(False, "--no-predictor", help="Skip M, PredGap_hat and CKA."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the result as JSON to this file."),
) -> None:
    """Run one W2S cell: Err_w, Err_w2s, Err_sc, PGR, PredGap, Gain, Misfit, and M, PredGap_hat, CKA.

    Weak model, weak labels, W2S model and strong ceiling (theory.md section 2) on arrays
    (--weak/--strong/--labels) or on a task's cached embeddings (--task with
    --weak-encoder/--strong-encoder), split for --seed exactly as `molw2s run` splits it.
    """
    from molw2s.experiment.cell import run_cell
    from molw2s.io import write_json_atomic

    settings = load_cell_settings(config, overrides)
    seed = settings.splits.seeds[0] if seed is None else seed
    if task is not None:
        given = [o for o, v in (("--weak", weak), ("--strong", strong), ("--labels", labels), ("--split", split)) if v]
        if given:
            raise ConfigError(
                f"--task takes its representations, labels and split from the task; drop {', '.join(given)}"
            )
        H_w, H_s, y, cell_split = _task_inputs(task, weak_encoder, strong_encoder, data_dir, settings, seed)
    else:
        H_w, H_s, y = _array_inputs(weak, strong, labels, weak_encoder, strong_encoder)
        cell_split = _array_split(len(y), split, settings, seed)
    row = run_cell(
        H_w, H_s, y, cell_split, settings, predictor=not no_predictor, progress=settings.w2s.head.solver == "sgd"
    )
    row = {**row, "seed": seed}
    if out is not None:
        write_json_atomic(out, row)
    _emit(row, as_json, first=("err_w", "err_w2s", "err_sc", "pgr", "predgap", "gain", "misfit", "M", "predgap_hat"))


def _array_inputs(
    weak: Path | None, strong: Path | None, labels: Path | None, weak_encoder: str | None, strong_encoder: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated representations and labels from array files (errors name the file)."""
    if weak_encoder is not None or strong_encoder is not None:
        raise ConfigError("--weak-encoder/--strong-encoder need --task; with arrays use --weak/--strong")
    if weak is None or strong is None or labels is None:
        missing = [o for o, v in (("--weak", weak), ("--strong", strong), ("--labels", labels)) if v is None]
        raise ConfigError(
            f"missing {', '.join(missing)}: give --weak, --strong and --labels arrays, or --task with encoders"
        )
    from molw2s.w2s.validation import same_rows

    H_w = _load_matrix(weak, "weak representation")
    H_s = _load_matrix(strong, "strong representation")
    y = _load_vector(labels, "labels")
    same_rows(**{f"--weak {weak}": H_w, f"--strong {strong}": H_s, f"--labels {labels}": y})
    return H_w, H_s, y


def _array_split(n_rows: int, split_file: Path | None, settings: CellSettings, seed: int) -> CellSplit:
    """D_w, D_s and test rows of arrays: from ``--split``, or the settings' random or file split."""
    from molw2s.data.prepare import split_arrays
    from molw2s.experiment.cell import CellSplit, check_cell_sizes

    split = CellSplit.from_task_split(split_arrays(n_rows, settings.splits, seed, split_file=split_file))
    check_cell_sizes(split, settings.splits, f"arrays, seed {seed}")
    return split


def _load_matrix(path: Path, what: str, *, min_rows: int = 1) -> np.ndarray:
    """A validated (rows x features) matrix from an array file; errors name ``what`` and the file."""
    from molw2s.w2s.arrays import load_array
    from molw2s.w2s.validation import as_matrix

    return as_matrix(load_array(path, what), what, path=path, min_rows=min_rows)


def _load_vector(path: Path, what: str, *, n_rows: int | None = None) -> np.ndarray:
    """A validated label vector from an array file, with ``n_rows`` entries when given."""
    from molw2s.w2s.arrays import load_array
    from molw2s.w2s.validation import as_vector

    return as_vector(load_array(path, what), what, n_rows=n_rows, path=path)


def _task_inputs(
    task: str,
    weak_encoder: str | None,
    strong_encoder: str | None,
    data_dir: Path | None,
    settings: CellSettings,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, CellSplit]:
    """Representations from the (cached) embeddings of a task, and its split for ``seed``."""
    from molw2s.data.tasks import load_task
    from molw2s.encoders.embed import embed_task
    from molw2s.experiment.cell import task_cell_splits

    if weak_encoder is None or strong_encoder is None:
        raise ConfigError("--task needs --weak-encoder and --strong-encoder")
    loaded = load_task(task, data_dir=data_dir)
    emb = settings.embedding
    spec: dict[str, Any] = {
        "pooling": emb.pooling,
        "layer": emb.layer,
        "batch_size": emb.batch_size,
        "precision": emb.precision,
        "progress": True,
    }
    H_w, H_s = embed_task(weak_encoder, loaded, **spec), embed_task(strong_encoder, loaded, **spec)
    (split,) = task_cell_splits(loaded, settings, data_dir, seeds=[seed])
    if split.n_dropped:
        typer.echo(f"note: {split.n_dropped} split rows have no valid molecule and were dropped", err=True)
    return H_w, H_s, loaded.y, split


def _emit(row: dict[str, Any], as_json: bool, first: tuple[str, ...]) -> None:
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    keys = [k for k in first if k in row] + [k for k in row if k not in first]
    width = max(len(k) for k in keys)
    for key in keys:
        value = row[key]
        if isinstance(value, list):
            text = f"{len(value)} values (--json prints them)"
        else:
            text = "n/a" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)
        typer.echo(f"{key:<{width}}  {text}")
