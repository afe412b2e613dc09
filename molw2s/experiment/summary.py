"""What a finished run reports in one place: provenance, and the headline table that the
docs quote (``molw2s report RUN_DIR --markdown`` prints it from ``results.json``)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

from molw2s import __version__
from molw2s.errors import DataError
from molw2s.tracking import ScalarLogger, finite_scalars

#: the (predictor, measured) Spearman tests of the headline table, in column order
HEADLINE = (
    ("M", "err_w2s", "M vs Err_w2s"),
    ("M", "predgap", "M vs PredGap"),
    ("predgap_hat", "err_w2s", "PredGap_hat vs Err_w2s"),
    ("err_w", "err_w2s", "Err_w vs Err_w2s"),
)


def provenance() -> dict[str, Any]:
    """The molw2s version and, when the package runs from a git checkout, its commit
    (``+dirty`` when files differ from it): what produced a run's numbers."""
    source = Path(__file__).resolve().parents[2]
    top = _git(source, "rev-parse", "--show-toplevel")
    machine = {"cpu": cpu_description()}
    if top is None or Path(top).resolve() != source:  # installed, not run from this project's checkout
        return {"molw2s_version": __version__, "git_commit": None, **machine}
    commit = _git(source, "rev-parse", "--short", "HEAD")
    if commit is not None and _git(source, "status", "--porcelain", "--untracked-files=no", "--", "molw2s"):
        commit += "+dirty"
    return {"molw2s_version": __version__, "git_commit": commit, **machine}


#: CPU flags that change numbers or speed (bf16 autocast on CPUs with AVX512-BF16 / AMX; BLAS kernels)
NUMERIC_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_description() -> str:
    """The CPU model, logical cores and the flags of :data:`NUMERIC_FLAGS` it has (from
    /proc/cpuinfo; the platform's processor string elsewhere)."""
    import os
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    present = [f for f in NUMERIC_FLAGS if f in flags]
    return f"{model}, {os.cpu_count()} logical cores" + (f", flags {' '.join(present)}" if present else "")


def load_results(run_dir: str | Path) -> dict[str, Any]:
    """``results.json`` of a run: ``RUN_DIR/report/results.json`` (or ``RUN_DIR/results.json``)."""
    run_dir = Path(run_dir)
    for path in (run_dir / "report" / "results.json", run_dir / "results.json"):
        if path.is_file():
            return _checked_results(path)
    raise DataError(f"no results.json in {run_dir} or {run_dir / 'report'}: has `molw2s run` finished there?")


#: what every task of a ``molw2s run`` results.json holds (what the report reads)
_TASK_KEYS = ("correlations", "interpretation", "predgap_check_spearman", "regime")


def _checked_results(path: Path) -> dict[str, Any]:
    """The results.json at ``path``; a DataError naming it when it is truncated, not JSON,
    or not written by ``molw2s run``."""
    try:
        results: Any = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"not valid JSON ({exc}): truncated or damaged; rerun `molw2s run` to rewrite it", path=path
        ) from None
    tasks = results.get("tasks") if isinstance(results, dict) else None
    if not isinstance(tasks, dict) or "name" not in results:
        raise DataError("not the results.json of `molw2s run` (no 'name' and 'tasks')", path=path)
    for task, res in tasks.items():
        missing = [key for key in _TASK_KEYS if not isinstance(res, dict) or key not in res]
        if missing:
            raise DataError(
                f"task {task!r} lacks {missing}: not the results.json of this molw2s's `molw2s run` (an older "
                "version's? rerun `molw2s run` on the same config: its cells are cached, only the evaluation reruns)",
                path=path,
            )
    return dict(results)


def headline_markdown(results: dict[str, Any]) -> str:
    """The Markdown table of the headline per task: the regime, the number of independent
    sources, Spearman rho [interval] with its permutation p-value for each headline pair,
    M's verdict, the PredGap_hat-vs-PredGap check, and the provenance line."""
    header = [
        "task",
        "regime",
        "sources",
        *(label for _, _, label in HEADLINE),
        "verdict (M vs Err_w2s)",
        "PredGap check",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for task, res in results["tasks"].items():
        corr = {(c["predictor"], c["measured"]): c for c in res["correlations"]}
        head = corr.get(("M", "err_w2s"))
        cells = [_rho(corr.get((p, m))) for p, m, _ in HEADLINE]
        n_sources = head["n_sources"] if head else 0
        verdict = head["verdict"] if head and res["regime"]["status"] != "none" else "no verdict: not a W2S regime"
        lines.append(
            f"| {task} | {res['regime']['status']} | {n_sources} | " + " | ".join(cells) + f" | {verdict} | "
            f"{res['predgap_check_spearman']:.2f} |"
        )
    prov = results.get("provenance") or {}
    lines.append("")
    lines.append(
        f"Spearman rho [interval] (permutation p) over independent weak sources; run `{results['name']}`, molw2s "
        f"{prov.get('molw2s_version', '?')}, commit {prov.get('git_commit') or 'unknown'}"
        + (f", {prov['cpu']}" if prov.get("cpu") else "")
        + "."
    )
    return "\n".join(lines)


def log_summary(results: dict[str, Any], tracker: ScalarLogger) -> None:
    """The sweep's summary to a tracker: every correlation (and its interval ends) as a
    scalar ``<task>/<predictor>_vs_<measured>/<method>`` at step 0, each task's
    interpretation and the headline table as text."""
    for task, res in results["tasks"].items():
        for corr in res["correlations"]:
            tag = f"{task}/{corr['predictor']}_vs_{corr['measured']}/{corr['method']}"
            values = {tag: corr["value"], f"{tag}/ci_low": corr["ci_low"], f"{tag}/ci_high": corr["ci_high"]}
            values[f"{tag}/p_value"] = corr["p_value"]
            tracker.log_scalars(0, finite_scalars(values))
        tracker.log_text(f"{task}/interpretation", res["interpretation"])
    tracker.log_text("headline", headline_markdown(results))


def interval_text(low: float | None, high: float | None) -> str:
    """``[low, high]``, or ``no interval`` when the bootstrap could not give one."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "no interval"
    return f"[{low:.2f}, {high:.2f}]"


def _rho(corr: dict[str, Any] | None) -> str:
    if corr is None:
        return "n/a"
    return f"{corr['value']:.2f} {interval_text(corr['ci_low'], corr['ci_high'])} (p {corr['p_value']:.2g})"


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None
