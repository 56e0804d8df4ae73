"""The closed forms of a run laid out as CSV rows: ``theory.csv`` (the closed-form
bias², variance and expected error per λ, :func:`bvsim.estimate.theory.ridge_theory`)
and the ``theory`` and ``theory_kind`` columns of ``anova.csv``
(:func:`bvsim.estimate.anova_theory.anova_theory`); and :func:`fixed_design_x`, the
shared training inputs a fixed design's closed forms take."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import Config
from ..data.generator import draw_training_sets
from ..estimate.anova_theory import anova_theory
from ..estimate.closed_form import has_theory
from ..estimate.theory import ridge_theory
from ..run.result import SweepResult

__all__ = ["anova_theory_table", "fixed_design_x", "theory_table"]


def fixed_design_x(r: SweepResult) -> np.ndarray | None:
    """The shared training inputs of a fixed design (for its closed-form theory); None
    for any other design."""
    if has_theory(r.cfg) != "fixed_design_exact":
        return None
    return draw_training_sets(r.cfg, r.test, [0]).x[0]


def theory_table(cfg: Config, test, x_design=None) -> pd.DataFrame | None:
    """``theory.csv``: one row per λ, columns weight_decay, bias2_theory,
    variance_theory, expected_error_theory (bias² + variance + the test-noise variance
    ``test.noise_var``) and kind (:func:`bvsim.estimate.theory.ridge_theory`, which
    takes the same arguments); None when no theory applies."""
    theory = ridge_theory(cfg, test, x_design)
    if theory is None:
        return None
    bias2, variance = theory["bias2"], theory["variance"]
    return pd.DataFrame(
        {
            "weight_decay": theory["weight_decay"],
            "bias2_theory": bias2,
            "variance_theory": variance,
            "expected_error_theory": bias2 + variance + float(test.noise_var),
            "kind": theory["kind"].tolist(),
        }
    )


def anova_theory_table(cfg: Config, test, x_design=None) -> pd.DataFrame | None:
    """The closed form of every row of ``anova.csv``: columns weight_decay, term,
    theory, theory_kind, the rows of each λ in the order of
    :func:`bvsim.estimate.anova_theory.anova_theory` (which takes the same arguments);
    None when there is no closed form."""
    theory = anova_theory(cfg, test, x_design)
    if theory is None:
        return None
    return pd.DataFrame(
        [
            {"weight_decay": wd, "term": term, "theory": value, "theory_kind": kind}
            for wd, kind, values in theory
            for term, value in values.items()
        ]
    )
