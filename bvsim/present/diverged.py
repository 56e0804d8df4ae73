"""The findings of ``report.md`` about members that diverged: how many, per λ, what it
does to the estimates and the ranking (:func:`bvsim.io.summary.ranked_expected`), and
the λ left without estimates."""

from __future__ import annotations

import pandas as pd

from ..io.summary import VALID_STATUSES
from .common import lambda_text
from .run_view import Sweep

__all__ = ["diverged", "missing_estimates"]


def _ranking(s: pd.DataFrame) -> str:
    """How the best λ was chosen with some sets diverged: on the sets usable at every
    λ with per-set values (all the comparisons with the best then count them in
    ``n_common_with_best``), naming the λ not ranked; else each λ on its own sets."""
    out = ("Where some sets diverged, a λ's estimates average the sets that converged "
           "there, which leave out the sets hard at that λ; ")  # fmt: skip
    n_common = s.get("n_common_with_best", pd.Series(0, index=s.index)).fillna(0)
    n = n_common[n_common > 0].unique()
    if len(n) != 1 or n[0] >= s["n_reps_used"].max():
        return out + ("too few sets are usable at every λ to rank them on the same sets, "
                      "so each λ's own mean ranks it and each difference from the best is "
                      "over the sets both kept.")  # fmt: skip
    out += (f"so the best λ, `prob_best` and every difference from the best are computed "
            f"on the {int(n[0])} training sets usable at every λ ranked, paired")  # fmt: skip
    unranked = s[s["expected_error"].notna() & (n_common == 0)]
    if unranked.empty:
        return out + "."
    lams = ", ".join(lambda_text(v) for v in unranked["weight_decay"])
    return out + (f" (not ranked: λ = {lams}, whose usable sets are too few for the per-set "
                  "values a paired comparison needs).")  # fmt: skip


def diverged(run: Sweep) -> str:
    """How many members diverged, per λ, and what that does to the ranking."""
    s = run.summary
    if not (n_div := int(s["n_diverged"].fillna(0).sum())):
        return "No member diverged."
    per = ", ".join(f"λ = {lambda_text(r.weight_decay)}: {int(r.n_diverged)}"
                    for r in s.itertuples() if r.n_diverged > 0)  # fmt: skip
    out = f"{n_div} member(s) diverged and were left out, with their whole training set ({per})."
    if (s["status"] == "some_diverged").any():
        out += " " + _ranking(s)
    return out


def missing_estimates(run: Sweep) -> str | None:
    """The λ without estimates, with their status."""
    s = run.summary
    bad = s[~s["status"].isin(VALID_STATUSES)] if "status" in s else s.iloc[:0]
    if bad.empty:
        return None
    return (
        "No estimates at "
        + ", ".join(f"λ = {lambda_text(r.weight_decay)} ({r.status})" for r in bad.itertuples())
        + "."
    )
