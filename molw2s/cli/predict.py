"""``molw2s predict`` (M and PredGap_hat from representations) and ``molw2s w2s`` (the
measured W2S protocol on arrays or on a task's cached embeddings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from molw2s.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from molw2s.data.splits import Split

# options shared by both commands
RuleOpt = Annotated[
    Optional[str],
    typer.Option(
        "--rule", help="k rule: flat_tail (default), tau or fixed; implied by --tau (tau) or --k-w/--k-s (fixed)."
    ),
]
TauOpt = Annotated[Optional[float], typer.Option("--tau", help="Variance fraction for rule tau, in (0, 1].")]
KwOpt = Annotated[Optional[int], typer.Option("--k-w", help="Fixed principal dimension of the weak representation.")]
KsOpt = Annotated[Optional[int], typer.Option("--k-s", help="Fixed principal dimension of the strong representation.")]
COpt = Annotated[float, typer.Option("--c", help="Flatness factor of rule flat_tail.")]
ScaleOpt = Annotated[str, typer.Option("--scale", help="Feature scaling of the heads: none or trace.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def register(app: typer.Typer) -> None:
    """Add the ``predict`` and ``w2s`` commands to ``app``."""
    app.command("predict")(predict)
    app.command("w2s")(w2s)


def resolve_rule(rule: str | None, tau: float | None, k_w: int | None, k_s: int | None) -> str:
    """The k rule from the options: explicit ``rule``, else implied by ``tau`` or ``k``."""
    if tau is not None and (k_w is not None or k_s is not None):
        raise ConfigError("give either --tau (rule tau) or --k-w/--k-s (rule fixed), not both")
    implied = "tau" if tau is not None else "fixed" if (k_w is not None or k_s is not None) else None
    if rule is None:
        return implied or "flat_tail"
    if implied is not None and implied != rule:
        raise ConfigError(f"--rule {rule} contradicts the given {'--tau' if implied == 'tau' else '--k-w/--k-s'}")
    return rule


def predict(
    weak: Path = typer.Option(
        ..., "--weak", help="Weak representation on D_s: .npy, .npz or file.npz:KEY (n_hat x d_w)."
    ),
    strong: Path = typer.Option(..., "--strong", help="Strong representation on the same rows (n_hat x d_s)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Gold labels on D_s (n_hat,): adds PredGap_hat."),
    beta_w: float = typer.Option(0.05, "--beta-w", help="Ridge coefficient of the weak head."),
    beta_s: float = typer.Option(0.05, "--beta-s", help="Ridge coefficient of the strong head."),
    scale: ScaleOpt = "none",
    rule: RuleOpt = None,
    tau: TauOpt = None,
    k_w: KwOpt = None,
    k_s: KsOpt = None,
    c: COpt = 3.0,
    as_json: JsonOpt = False,
) -> None:
    """Predict W2S performance from representations: M, M_F, PredGap_hat.

    M = ||P_s (I - P_w)||_op and M_F = ||P_s (I - P_w)||_F^2 need no labels; --labels
    adds PredGap_hat = ||P_s (I - P_w) y||^2 / n_hat (theory.md sections 3-4).
    """
    from molw2s.theory.predictor import predict_w2s

    H_w = _load_matrix(weak, "weak representation", min_rows=2)
    H_s = _load_matrix(strong, "strong representation", min_rows=2)
    y = None if labels is None else _load_vector(labels, "labels", n_rows=len(H_w))
    k_rule = resolve_rule(rule, tau, k_w, k_s)
    result = predict_w2s(
        H_w,
        H_s,
        beta_w=beta_w,
        beta_s=beta_s,
        y=y,
        rule=k_rule,  # type: ignore[arg-type]
        tau=0.9 if tau is None else tau,
        k_w=k_w,
        k_s=k_s,
        c=c,
        scale=scale,  # type: ignore[arg-type]
    )
    _emit(result.to_dict(), as_json, first=("M", "M_F", "predgap_hat"))


def w2s(
    weak: Optional[Path] = typer.Option(None, "--weak", help="Weak representation of every row (.npy/.npz)."),
    strong: Optional[Path] = typer.Option(None, "--strong", help="Strong representation of every row."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Gold labels of every row (.npy/.npz)."),
    split: Optional[Path] = typer.Option(
        None, "--split", help='Split JSON {"train","valid","test"}; default: seeded random 80/10/10.'
    ),
    task: Optional[str] = typer.Option(
        None, "--task", help="Task name (ESOL, FreeSolv, Lipop, ...) instead of arrays."
    ),
    weak_encoder: Optional[str] = typer.Option(
        None, "--weak-encoder", help="With --task: weak encoder spec (e.g. ecfp4-2048)."
    ),
    strong_encoder: Optional[str] = typer.Option(None, "--strong-encoder", help="With --task: strong encoder spec."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="With --task: directory holding the task files."),
    pooling: str = typer.Option(
        "cls", "--pooling", help="With --task: pooling of transformer embeddings (cls or mean)."
    ),
    layer: int = typer.Option(-1, "--layer", help="With --task: transformer layer to embed."),
    split_seed: Optional[int] = typer.Option(
        None, "--split-seed", help="With --task: the paper's split seed (122, 123, 124)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random split, the D_w/D_s draw and SGD."),
    n_weak: str = typer.Option("0.5", "--n-weak", help="Size of D_w: a count, or a fraction of the training part."),
    n_strong: str = typer.Option("0.5", "--n-strong", help="Size of D_s: a count, or a fraction of the training part."),
    solver: str = typer.Option("ridge", "--solver", help="ridge (closed form) or sgd (the paper's)."),
    beta: float = typer.Option(
        0.05, "--beta", help="Ridge coefficient of the strong heads (sgd: weight decay 2*beta)."
    ),
    beta_w: Optional[float] = typer.Option(
        None, "--beta-w", help="Ridge coefficient of the weak head (default: --beta)."
    ),
    scale: ScaleOpt = "none",
    lr: float = typer.Option(1e-3, "--lr", help="SGD learning rate."),
    epochs: int = typer.Option(2000, "--epochs", help="SGD epochs."),
    batch_size: int = typer.Option(1024, "--batch-size", help="SGD batch size."),
    device: str = typer.Option("cpu", "--device", help="SGD device (cpu or cuda)."),
    rule: RuleOpt = None,
    tau: TauOpt = None,
    k_w: KwOpt = None,
    k_s: KsOpt = None,
    c: COpt = 3.0,
    no_predictor: bool = typer.Option(False, "--no-predictor", help="Skip M, PredGap_hat and CKA."),
    as_json: JsonOpt = False,
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the result as JSON to this file."),
) -> None:
    """Run the W2S protocol and measure Err_w, Err_w2s, Err_sc, PGR, PredGap, Gain, Misfit.

    Weak model, weak labels, W2S model and strong ceiling (theory.md section 2), on
    arrays (--weak/--strong/--labels) or on a task's cached embeddings (--task with
    --weak-encoder/--strong-encoder); M, PredGap_hat and CKA are printed beside them.
    """
    from molw2s.config import build_model
    from molw2s.data.splits import load_split_file, random_split, w2s_split
    from molw2s.io import write_json_atomic
    from molw2s.theory.predictor import PredictorConfig
    from molw2s.w2s.heads import HeadConfig
    from molw2s.w2s.protocol import run_w2s

    if task is not None:
        given = [
            opt
            for opt, val in (("--weak", weak), ("--strong", strong), ("--labels", labels), ("--split", split))
            if val
        ]
        if given:
            raise ConfigError(
                f"--task takes its representations, labels and split from the task; drop {', '.join(given)}"
            )
        H_w, H_s, y, parts = _task_inputs(
            task, weak_encoder, strong_encoder, data_dir, pooling, layer, split_seed, seed
        )
    else:
        if split_seed is not None:
            raise ConfigError("--split-seed selects a task's paper split; with arrays use --split FILE or --seed")
        H_w, H_s, y = _array_inputs(weak, strong, labels, weak_encoder, strong_encoder)
        parts = load_split_file(split, len(y)) if split is not None else random_split(len(y), (0.8, 0.1, 0.1), seed)
    draw = w2s_split(parts.train, _size(n_weak, "--n-weak"), _size(n_strong, "--n-strong"), seed)
    settings = dict(solver=solver, scale=scale, lr=lr, epochs=epochs, batch_size=batch_size, seed=seed, device=device)
    head = build_model(HeadConfig, {**settings, "beta": beta}, source="options")
    weak_head = build_model(HeadConfig, {**settings, "beta": beta if beta_w is None else beta_w}, source="options")
    predictor = None
    if not no_predictor:
        k_rule = resolve_rule(rule, tau, k_w, k_s)
        predictor = build_model(
            PredictorConfig, dict(rule=k_rule, tau=0.9 if tau is None else tau, k_w=k_w, k_s=k_s, c=c), source="options"
        )
    result = run_w2s(
        H_w,
        H_s,
        y,
        weak_idx=draw.weak,
        strong_idx=draw.strong,
        test_idx=parts.test,
        head=head,
        weak_head=weak_head,
        predictor=predictor,
        progress=solver == "sgd",
    )
    row = {**result.to_dict(), "seed": seed}
    if out is not None:
        write_json_atomic(out, row)
    _emit(row, as_json, first=("err_w", "err_w2s", "err_sc", "pgr", "predgap", "gain", "misfit", "M", "predgap_hat"))


def _array_inputs(
    weak: Path | None, strong: Path | None, labels: Path | None, weak_encoder: str | None, strong_encoder: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated representations and labels from array files (errors name the file)."""
    if weak_encoder is not None or strong_encoder is not None:
        raise ConfigError("--weak-encoder/--strong-encoder need --task; with arrays use --weak/--strong")
    missing = [opt for opt, val in (("--weak", weak), ("--strong", strong), ("--labels", labels)) if val is None]
    if missing:
        raise ConfigError(
            f"missing {', '.join(missing)}: give --weak, --strong and --labels arrays, or --task with encoders"
        )
    H_w = _load_matrix(weak, "weak representation")
    H_s = _load_matrix(strong, "strong representation")
    return H_w, H_s, _load_vector(labels, "labels")


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
    pooling: str,
    layer: int,
    split_seed: int | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Split]:
    """Representations from the (cached) embeddings of a task, and its split in task positions."""
    from molw2s.data.splits import paper_split, random_split, to_positions
    from molw2s.data.tasks import load_task
    from molw2s.encoders.embed import embed_task

    if weak_encoder is None or strong_encoder is None:
        raise ConfigError("--task needs --weak-encoder and --strong-encoder")
    loaded = load_task(task, data_dir=data_dir)
    spec = {"pooling": pooling, "layer": layer, "cache": True, "data_dir": data_dir, "progress": True}
    H_w, H_s = embed_task(weak_encoder, loaded, **spec), embed_task(strong_encoder, loaded, **spec)
    # file rows first, then task positions: the same split as `molw2s run` for a seed
    if split_seed is not None:
        rows = paper_split(task, split_seed, data_dir)
    else:
        rows = random_split(loaded.n_rows, (0.8, 0.1, 0.1), seed)
    mapped = to_positions(rows, loaded.row_index)
    if mapped.n_dropped():
        typer.echo(f"note: {mapped.n_dropped()} split rows have no valid molecule and were dropped", err=True)
    return H_w, H_s, loaded.y, mapped.split


def _size(text: str, option: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{option} must be a count (e.g. 300) or a fraction (e.g. 0.5), got {text!r}") from None


def _emit(row: dict[str, Any], as_json: bool, first: tuple[str, ...]) -> None:
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    keys = [k for k in first if k in row] + [k for k in row if k not in first]
    width = max(len(k) for k in keys)
    for key in keys:
        value = row[key]
        text = "n/a" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)
        typer.echo(f"{key:<{width}}  {text}")
