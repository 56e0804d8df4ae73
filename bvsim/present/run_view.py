"""A run's ``summary.csv`` (and ``run.json``) as the findings of ``report.md`` read it
(:class:`Sweep`): its rows with estimates, the best λ, whether the comparisons are
paired, the 95 % interval of each λ's difference from the best (Student's t), and the
sign test of each λ's per-set differences from the best that tells a heavy-tailed
difference from a tie."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..estimate.compare import sign_test
from .common import (
    best_position,
    critical_value,
    crossed_factors_of,
    get,
    lambda_text,
    paired_dof,
    t_interval_text,
)

__all__ = ["Sweep"]

#: How a 95 % interval without degrees of freedom is set (common.critical_value).
_NORMAL = "a two-sided 95 % interval from the normal quantile: no degrees of freedom in this run"


@dataclass(frozen=True)
class Sweep:
    """A run's summary as the findings read it.

    Attributes
    ----------
    summary : DataFrame
        ``summary.csv`` sorted by λ (every row, with or without estimates).
    valid : DataFrame
        Its rows with estimates (:func:`bvsim.present.common.valid_rows`), not empty.
    meta : dict
        ``run.json``.
    """

    summary: pd.DataFrame
    valid: pd.DataFrame
    meta: dict

    @cached_property
    def crossed(self) -> bool:
        """A crossed design (``run.json`` names its factors): its SEs are the multiway
        jackknife over the factors, its ``prob_best`` a pigeonhole bootstrap."""
        return bool(crossed_factors_of(self.meta))

    @cached_property
    def best_pos(self) -> int:
        """Position of the best λ in :attr:`valid`."""
        return best_position(self.valid)

    @property
    def best(self) -> pd.Series:
        """The best λ's row of :attr:`valid`."""
        return self.valid.iloc[self.best_pos]

    @property
    def paired(self) -> bool:
        """Whether the summary has paired differences (``diff_from_best_se`` of a λ
        other than the best, whose own is 0 even where no SE exists)."""
        v = self.valid
        if "diff_from_best_se" not in v:
            return False
        return bool(v["diff_from_best_se"].drop(v.index[self.best_pos]).notna().any())

    @property
    def best_at_edge(self) -> str | None:
        """'largest' when the best λ is the largest λ of the grid, 'smallest' when it is
        the smallest and that is above 0 (the optimum may lie outside the grid), else
        None."""
        wd = self.summary["weight_decay"].to_numpy(float)
        best = float(self.best["weight_decay"])
        if len(wd) > 1 and best == wd.max():
            return "largest"
        if len(wd) > 1 and best == wd.min() and best > 0:
            return "smallest"
        return None

    @cached_property
    def dof(self) -> np.ndarray:
        """Per position in :attr:`valid`: the degrees of freedom of its paired SE from
        the best (:func:`bvsim.present.common.paired_dof` of ``diff_from_best_df`` and
        ``n_common_with_best``), NaN where there are none."""
        v = self.valid
        df = paired_dof(
            v["diff_from_best_df"] if "diff_from_best_df" in v else None,
            v["n_common_with_best"] if "n_common_with_best" in v else None,
            self.crossed,
        )
        return np.broadcast_to(np.asarray(df, dtype=float), len(v))

    @cached_property
    def t_mult(self) -> np.ndarray:
        """Per position in :attr:`valid`: how many paired SE the two-sided 95 % interval
        of its difference from the best spans (:func:`bvsim.present.common.critical_value`
        at :attr:`dof`: Student's t, the normal quantile where there are no df). A few
        sets, or a crossed factor with few levels, leave the SE itself uncertain, and
        ± 2 SE would cover less than 95 %."""
        return np.asarray(critical_value(self.dof), dtype=float).reshape(len(self.valid))

    def interval(self, positions) -> tuple[str, str]:
        """The interval of :attr:`t_mult` at ``positions`` as the findings word it: its
        width (``'2.09 paired SE'``, or ``'t paired SE'`` where it differs between
        them) and how it was set (for a parenthesis)."""
        df = [float(self.dof[i]) for i in positions]
        q = [float(self.t_mult[i]) for i in positions]  # the normal quantile without df
        if not np.isfinite(df).any():
            return f"{critical_value(np.nan):.2f} paired SE", _NORMAL
        if max(q) - min(q) < 0.005 and np.isfinite(df).all():
            return f"{q[0]:.2f} paired SE", t_interval_text(df[0], self.crossed)
        how = (
            "Satterthwaite degrees of freedom"
            if self.crossed
            else "degrees of freedom, the sets compared minus one"
        )
        return "t paired SE", (
            f"a two-sided 95 % interval: t = {min(q):.2f}–{max(q):.2f} from Student's t "
            f"with each difference's {how}, `diff_from_best_df`"
            + ("; the normal quantile where it has none" if not np.isfinite(df).all() else "")
        )

    def near(self) -> list[int]:
        """Positions other than the best whose difference from it lies within its 95 %
        interval (:attr:`t_mult` paired SE), on either side (a λ whose members
        diverged is compared on fewer sets than the best was chosen on)."""
        v = self.valid
        d, se = v["diff_from_best"].to_numpy(float), v["diff_from_best_se"].to_numpy(float)
        return [
            i
            for i in range(len(v))
            if i != self.best_pos and np.isfinite(se[i]) and se[i] > 0
            and abs(d[i]) <= self.t_mult[i] * se[i]
        ]  # fmt: skip

    @cached_property
    def signs(self) -> dict[int, tuple[str, float, bool, bool]]:
        """Per position in :attr:`valid` other than the best, with the counts of
        ``summary.csv``: ('k of n sets' worse than the best, and how many better, ties
        being neither; the two-sided sign test's p-value of worse against better, NaN
        in a crossed design, whose counts are over cells that share their draws;
        whether worse outnumbers better; whether it is worse in every one)."""
        v = self.valid
        if not self.paired or "n_worse_than_best" not in v:
            return {}
        unit = "cells" if self.crossed else "sets"
        out = {}
        for i in range(len(v)):
            if i == self.best_pos:
                continue
            row = v.iloc[i]
            worse, n = get(row, "n_worse_than_best"), get(row, "n_common_with_best")
            better = get(row, "n_better_than_best")
            if not (np.isfinite(worse) and np.isfinite(n) and n > 0):
                continue
            if not np.isfinite(better):  # written before the column: no ties assumed
                better = n - worse
            worse, better, n = int(worse), int(better), int(n)
            text = f"{worse} of {n} {unit}" + (
                f", better in {better}" if better + worse < n else ""
            )
            p = float("nan") if self.crossed else sign_test(worse, better)
            out[i] = (text, p, worse > better, worse == n)
        return out

    @cached_property
    def heavy_tailed(self) -> list[int]:
        """Positions within the 95 % interval of the best (:meth:`near`) that
        nonetheless are worse in more sets than better, by so many that a sign test
        (two-sided, Bonferroni over the λ compared) tells them apart; in a crossed
        design, whose cells share their draws (no sign test), worse in every cell. A few
        sets (draws) dominate the mean difference and its SE (a heavy tail), so the SE
        is no guide there."""
        alpha = 0.05 / max(1, len(self.signs))
        near = self.near() if self.paired else []
        return [
            i
            for i, (_, p, worse, everywhere) in self.signs.items()
            if i in near and (everywhere if self.crossed else worse and p < alpha)
        ]

    @property
    def reference(self) -> str:
        """The smallest λ with estimates, as the findings name it."""
        wd = self.valid.iloc[0]["weight_decay"]
        return "λ = 0" if wd == 0 else f"the smallest λ ({lambda_text(wd)})"
