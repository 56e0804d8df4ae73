"""The crossed design's random-effects ANOVA of the variance (``anova.csv``,
``anova_pointwise.csv``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import crossed_shape
from ..estimate.anova import anova_terms as anova_term_names
from ..run.result import SweepResult
from ..task import task_for
from .theory import anova_theory_table, fixed_design_x

__all__ = ["anova_tables"]


def anova_tables(r: SweepResult, parts: dict | None) -> tuple:
    """The random-effects ANOVA of a crossed design per λ (``anova.csv``) and per λ and
    test point (``anova_pointwise.csv``); (None, None) for a nested design.

    ``parts`` maps a λ's index to its ANOVA (overall, pointwise), estimated in the
    summary's pass over the predictions (:func:`bvsim.estimate.rows.crossed_fill`;
    ``per_set["anova"]`` of :func:`bvsim.io.summary.summary_rows`). A factor with one
    level is left out. A λ at which any member diverged has none: NaN values (dropping
    its cells would break the crossing). Rows per λ: one per term, then ``variance``
    (their sum), ``bias2``, ``noise`` and ``expected_error`` = bias2 + variance + noise
    (exactly).
    """
    cfg = r.cfg
    if not task_for(cfg).crossed(cfg):
        return None, None
    parts = parts or {}
    factors, _ = crossed_shape(cfg)
    terms = [":".join(t) for t in anova_term_names(factors)]
    noise = float(r.test.noise_var)
    known = bool(np.isfinite(noise))
    rows, points = [], []
    for i, wd in enumerate(r.weight_decay):
        head = {"weight_decay": float(wd)}
        if i not in parts:
            rows += [head | {"term": t, "value": np.nan} for t in terms]
            continue
        overall, pointwise = parts[i]
        for t in terms:
            rows.append(
                head
                | {
                    "term": t,
                    "value": overall[t],
                    "se": overall[f"{t}_se"],
                    "df": overall[f"{t}_df"],
                    "share": overall[f"{t}_share"],
                    "share_se": overall[f"{t}_share_se"],
                    "share_df": overall[f"{t}_share_df"],
                }
            )
        ee = overall["mse_truth"] + (noise if known else 0.0)
        exact = (0.0 if known else np.nan, np.nan)  # the noise: exact, no df
        for term, value, (se, df) in (
            ("variance", overall["variance"], _se_df(overall, "variance")),
            ("bias2", overall["bias2"], _se_df(overall, "bias2")),
            ("noise", noise if known else np.nan, exact),
            ("expected_error", ee, _se_df(overall, "mse_truth")),
        ):
            rows.append(head | {"term": term, "value": value, "se": se, "df": df})
        frame = {"weight_decay": float(wd), "point": np.arange(len(r.test.x)), "x": r.test.x[:, 0]}
        for t in [*terms, "variance", "bias2"]:
            points.append(pd.DataFrame({**frame, "term": t, "value": pointwise[t]}))
    columns = ["weight_decay", "term", "value", "se", "df", "share", "share_se", "share_df"]
    anova = _with_theory(pd.DataFrame(rows).reindex(columns=columns), r)
    pointwise = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    return anova, pointwise


def _se_df(overall: dict, name: str) -> tuple[float, float]:
    return overall[f"{name}_se"], overall[f"{name}_df"]


def _with_theory(anova: pd.DataFrame, r: SweepResult) -> pd.DataFrame:
    """``anova`` with the closed form of each row (columns ``theory``, ``theory_kind``)
    where :func:`bvsim.estimate.anova_theory.has_anova_theory` finds one; unchanged
    otherwise."""
    theory = anova_theory_table(r.cfg, r.test, fixed_design_x(r))
    if theory is None:
        return anova
    return anova.merge(theory, on=["weight_decay", "term"], how="left", validate="1:1")
