"""``report.md`` of a second-axis run (``sweep.axis``): an introduction, the best λ for
each value of the axis (with the reduction it gives and bias²'s share at the largest
λ), the values whose identity check fails, the axis figures, and how to reproduce the
run (as a run's report does, :func:`bvsim.present.common.reproduce_lines`). Like
:mod:`.report`, :func:`write_axis_report` assembles the sections from one function
each. Each value's own run has a full report (:mod:`.report`) under ``axis/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io.rundir import axis_dir_name
from ..io.tables import Tables
from ..run.store import write_text_atomic
from .checks import IDENTITY_SE, identity_worst
from .common import (
    axis_value_text,
    critical_value,
    crossed_factors_of,
    crossed_se_text,
    get,
    lambda_text,
    paired_dof,
    pct_pm,
    pm,
    reproduce_lines,
    share_of,
    training_phrase,
    valid_rows,
)
from .figure_table import axis_figures, figure_lines
from .run_view import Sweep

__all__ = ["write_axis_report"]


def write_axis_report(tables: Tables, out_dir, axis: str) -> Path:
    """Write ``out_dir/report.md`` of a second-axis sweep: best λ per value, figures
    (those :func:`bvsim.present.figures.plot_axis` draws, drawn or not yet),
    links to the sub-runs' reports.

    Parameters
    ----------
    tables : Tables
        The combined tables (:func:`bvsim.io.tables.combine_axis`), ``axis`` a column.
    out_dir : path
        The combined run directory.
    axis : str
        The second axis (``sweep.axis``).

    Returns
    -------
    Path
        The report file.
    """
    out_dir = Path(out_dir)
    s, meta = tables.summary, tables.meta
    crossed = bool(crossed_factors_of(meta))
    # a categorical axis (penalty, optimizer) in the order the user listed it, numbers ascending
    groups = list(s.groupby(axis, sort=pd.api.types.is_numeric_dtype(s[axis])))
    lines = [
        *_header(s, meta, out_dir, axis, crossed),
        *_table_section(groups, meta, axis, crossed),
        *_identity_lines(axis, groups, crossed),
        *_figures_section(tables, axis),
        *reproduce_lines(meta, out_dir),
    ]
    path = out_dir / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def _header(s: pd.DataFrame, meta: dict, out_dir: Path, axis: str, crossed: bool) -> list[str]:
    """The title and the introduction: the design, what the ± values are, where each
    value's own run is, and whether the values share their training sets."""
    return [
        f"# Bias–variance report: {meta.get('name', out_dir.name)} ({axis} × λ)",
        "",
        f"{len(meta.get('axis_values', []))} values of {axis} crossed with "
        f"{s['weight_decay'].nunique()} weight decays λ; {meta.get('n_members', '?')} trained "
        f"members in all{training_phrase(meta)}. ± values are "
        + (
            f"Monte Carlo standard errors: {crossed_se_text(meta)}. "
            if crossed
            else "Monte Carlo standard errors over training sets. "
        )
        + f"Each value of {axis} is a complete run of its own under `axis/` (CSVs, figures, "
        "report). The reduction (best λ against the smallest λ) is paired over each run's "
        + ("factor levels. " if crossed else "training sets. ")
        + _axis_pairing(axis),
        "",
    ]


def _table_section(groups, meta: dict, axis: str, crossed: bool) -> list[str]:
    """The section "Best λ for each value": one row per value (:func:`_value_row`),
    what "within its 95 % interval" means, and the heavy-tail note where a row carries
    its mark."""
    rows = [_value_row(axis, value, part, meta) for value, part in groups]
    return [
        "## Best λ for each value",
        "",
        f"| {axis} | best λ | also within its 95 % interval | expected error at best λ | "
        "at the smallest λ | reduction | bias² share at the largest λ | diverged | run |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "'Also within its 95 % interval': the other λ whose paired difference from the "
        "best lies within Student's t times its paired SE (each value's report gives the "
        "intervals): the best λ is not resolved more finely than that, so a change of "
        f"best λ from one value of {axis} to the next can be noise.",
        "",
        *(_heavy_note(crossed) if any(_HEAVY in r for r in rows) else []),
    ]


def _heavy_note(crossed: bool) -> list[str]:
    """The note on the mark :data:`_HEAVY`: a difference within the best's interval
    that a few draws dominate."""
    return [
        f"{_HEAVY} Within the 95 % interval of the best but worse "
        + (
            "in every cell of the crossed design: a few draws dominate that "
            "difference (a heavy tail), so its SE (at the smallest λ, the "
            "reduction's) is no guide there (a count, not a test: see the value's "
            "report)."
            if crossed
            else "in more training sets than chance explains: a few sets dominate "
            "that difference (a heavy tail), so its SE (at the smallest λ, the "
            "reduction's) is no guide there (sign test in the value's report)."
        ),
        "",
    ]


def _figures_section(tables: Tables, axis: str) -> list[str]:
    """The section "Figures": those :func:`bvsim.present.figures.plot_axis` draws,
    drawn or not yet."""
    return [
        "## Figures",
        "",
        *figure_lines(axis_figures(tables.summary, axis, tables.anova), axis),
    ]


#: The mark of a reduction whose SE a heavy tail makes no guide (see the table's note).
_HEAVY = "†"


def _value_row(axis: str, value, part: pd.DataFrame, meta: dict) -> str:
    """One value's table row: its best λ, the other λ within its 95 % interval, the
    expected error there and at the smallest λ, the paired reduction, bias²'s share at
    the largest λ, diverged members."""
    ordered = part.sort_values("weight_decay").reset_index(drop=True)
    v = valid_rows(ordered)
    n_div = int(part["n_diverged"].sum())
    link = f"[report](axis/{axis_dir_name(axis, value)}/report.md)"
    if v.empty:
        return f"| {axis_value_text(value)} | — | — | — | — | — | — | {n_div} | {link} |"
    run = Sweep(ordered, v, meta)
    best, first, last = run.best, v.iloc[0], v.iloc[-1]
    red, red_se = get(first, "reduction_by_best"), get(first, "reduction_by_best_se")
    if not np.isfinite(red):  # an older run
        red = 1 - best["expected_error"] / first["expected_error"]
    share_se = get(last, "bias2_share_se")
    heavy = 0 in run.heavy_tailed
    tied = run.near() if run.paired else []
    tied_text = (
        ", ".join(
            lambda_text(run.valid.iloc[i]["weight_decay"])
            + (f" {_HEAVY}" if i in run.heavy_tailed else "")
            for i in tied
        )
        or "none"
        if run.paired
        else "—"
    )
    return (
        f"| {axis_value_text(value)} | {lambda_text(best['weight_decay'])} | {tied_text} | "
        f"{pm(best['expected_error'], best['expected_error_se'])} | "
        f"{pm(first['expected_error'], first['expected_error_se'])} | {pct_pm(red, red_se)}"
        + (f" {_HEAVY}" if heavy else "")
        + f" | {pct_pm(share_of(last, 'bias2'), share_se)}"
        + f" | {n_div} | {link} |"
    )


def _identity_lines(axis: str, groups, crossed: bool = False) -> list[str]:
    """A paragraph naming the values whose identity check (measured test error against
    bias² + variance + noise, within 3 paired SE) fails, which their own reports say
    (``crossed``: a crossed design's run)."""
    failed, worst_z, n_checks, dofs = [], [], 0, []
    for value, part in groups:
        v = valid_rows(part)
        worst = identity_worst(v)
        if worst is None:
            continue
        n_checks += int(v["identity_gap_se"].notna().sum())
        dofs.append(_fewest_dof(v, crossed))
        if worst[0] > IDENTITY_SE:
            worst_z.append(worst[0])
            failed.append(
                f"{axis} = {axis_value_text(value)} ({worst[0]:.2f} SE at λ = "
                f"{lambda_text(worst[1])})"
            )
    if not failed:
        return []
    # Bonferroni over every check, two-sided 5 %: what chance alone reaches, with
    # Student's t at the fewest degrees of freedom of the checks (normal without them)
    dof = min((d for d in dofs if np.isfinite(d)), default=np.nan)
    family = critical_value(dof, level=1 - 0.05 / n_checks)
    dist = "normal" if np.isnan(dof) else f"Student's t at {dof:.3g} degrees of freedom"
    largest = max(worst_z)
    lead = (  # the verdict over every check first, then the checks that prompted it
        "Across the values, the measured test error agrees with bias² + variance + noise "
        "as well as chance allows"
        if largest <= family
        else "The measured test error does not agree with bias² + variance + noise by more "
        "than chance explains"
    )
    return [
        f"{lead}: the largest disagreement, {largest:.2f} paired SE, is "
        f"{'within' if largest <= family else 'beyond'} the family-wise 5 % threshold of "
        f"{family:.2f} SE for {n_checks} checks (value × λ; Bonferroni, two-sided, {dist}). "
        f"Beyond {IDENTITY_SE} paired SE, the per-check threshold of each value's report: "
        f"{'; '.join(failed)} (see that value's report). "
        "Within a value the λ share their test labels, so one realisation of the test "
        "noise can shift all its checks alike.",
        "",
    ]


def _fewest_dof(v: pd.DataFrame, crossed: bool) -> float:
    """The fewest degrees of freedom of a value's paired SEs
    (:func:`bvsim.present.common.paired_dof` of ``diff_from_best_df``, with the sets
    used where it has none: sets compared − 1, a crossed design's Satterthwaite df);
    NaN when there are none."""
    dof = paired_dof(
        v["diff_from_best_df"] if "diff_from_best_df" in v else None,
        v["n_reps_used"] if "n_reps_used" in v else None,
        crossed,
    )
    dof = np.asarray(dof, dtype=float)
    return float(np.nanmin(dof)) if np.isfinite(dof).any() else float("nan")


def _axis_pairing(axis: str) -> str:
    """Whether the values of a second axis share their training sets."""
    if axis in ("hidden_width", "dropout", "penalty", "optimizer"):
        return (
            f"Every value of {axis} trains on the same training sets and test labels (the "
            "same root seed; the data do not depend on the model), so differences across "
            "values could be paired too; this report makes no such comparison, and the "
            "SEs in the table are marginal."
        )
    if axis == "noise_std":
        return (
            "The values of noise_std share the training inputs, the test labels and the "
            "standard-normal noise draws of each training set (the same seed streams), "
            "scaled by noise_std: coupled, but not the same data, so no comparison across "
            "values is paired; the SEs in the table are marginal, one value at a time."
        )
    return (
        f"The values of {axis} do not train on the same training sets: each draws its "
        "sets from the same seed streams with a different number of points, so the draws "
        "overlap (prefixes of the same streams, and the same test labels where those do "
        "not depend on the number of points) and the values are correlated; no comparison "
        "across values is paired, and the SEs in the table are marginal, one value at a "
        "time."
    )
