"""The ``linear`` truth's coefficients w*, defined once: the generator draws its labels
from them and the closed forms (:mod:`.theory`, :mod:`.anova_theory`) assume them."""

from __future__ import annotations

import numpy as np

from ..config import DataConfig

__all__ = ["true_coef"]


def true_coef(data: DataConfig) -> np.ndarray:
    """w* of the ``linear`` truth f(x) = xᵀw*: ``data.dim`` equal entries with
    ‖w*‖² = ``data.coef_norm2``."""
    return np.full(data.dim, np.sqrt(data.coef_norm2 / data.dim))
