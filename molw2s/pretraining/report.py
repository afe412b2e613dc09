"""The table a pretraining run prints: data report and held-out metrics of every model."""

from __future__ import annotations

from molw2s.pretraining.family import FamilyResult


def print_results(result: FamilyResult) -> None:
    """The data report and the held-out table (masked-token accuracy, MLM loss, PhysChem R^2)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # pipes and logs get 80 columns by default: too narrow
        console.width = max(console.width, 120)
    for line in result.data_report:
        console.print(line, highlight=False, markup=False)
    table = Table(title=f"held-out masked-token prediction ({result.run_dir})")
    replicated = any(row.seed is not None for row in result.rows)  # a "seed" column for replicates
    columns = ("model", *(("seed",) if replicated else ()), "role", "params", "steps")
    for col in (*columns, "accuracy", "MLM loss", "PhysChem R^2", "status"):
        table.add_column(col, justify="left" if col in ("model", "role", "status") else "right", no_wrap=True)
    for row in result.rows:
        m = row.metrics
        table.add_row(
            row.name,
            *(("-" if row.seed is None else str(row.seed),) if replicated else ()),
            row.role,
            "-" if row.n_params is None else f"{row.n_params:,}",
            "-" if row.steps is None else str(row.steps),
            _fmt(m.get("mlm_accuracy")),
            _fmt(m.get("mlm_loss")),
            _fmt(m.get("physchem_r2")),
            row.status,
        )
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
