"""Per-key value checks of the configuration schema: each takes a value and returns
an error message (what is allowed) or None. :mod:`bvsim.config.schema` attaches them to
its keys."""

from __future__ import annotations

import math
import unicodedata


def positive(v):
    return None if v > 0 else "must be > 0"


def at_least(n):
    def check(v):
        return None if v >= n else f"must be >= {n}"

    return check


def non_negative(v):
    return None if v >= 0 else "must be >= 0"


#: The root seed is stored as a 64-bit signed integer in every chunk file.
MAX_SEED = 2**63 - 1


def root_seed(v):
    """0 <= seed < 2**63: chunk files store it as an int64."""
    return None if 0 <= v <= MAX_SEED else f"must be an integer in [0, 2**63 - 1 = {MAX_SEED}]"


def one_of(*allowed):
    def check(v):
        return None if v in allowed else f"must be one of {', '.join(map(repr, allowed))}"

    check.allowed = allowed
    return check


def unit_interval_open_right(v):
    return None if 0 <= v < 1 else "must be in [0, 1)"


#: Longest run name (it names the run directory ``results/<name>``).
MAX_NAME_LENGTH = 100


def run_name(value):
    """A run name is one safe path component: it names ``results/<name>``."""
    if not value.strip() or value in (".", ".."):
        return "must be a non-empty name other than '.' and '..'"
    if value != value.strip():
        return "must not begin or end with whitespace"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters (got {len(value)})"
    if any(ch in "/\\" for ch in value):
        return "must be a single path component (no '/' or '\\'); use --out for a path"
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        return "must not contain control or unprintable characters"
    return None


def truth_name(value):
    if ":" in value:  # a user's callable: checked on a probe batch in _check_user_code
        return None
    return one_of("linear", "sine", "cubic", "gaussians")(value) and (
        "must be one of 'linear', 'sine', 'cubic', 'gaussians', or 'package.module:f' / 'file.py:f'"
    )


#: Second sweep axes whose values are names (``sweep.axis_labels``), each with the
#: training key it sets and the names it allows.
CATEGORICAL_AXES = {
    "penalty": ("l2", "l1", "decoupled"),
    "optimizer": ("sgd", "adam"),
}

#: Truths that make a classification task (trained with cross-entropy).
CLASSIFICATION_TRUTHS = ("gaussians",)

#: The fewest usable training sets a classification λ's estimate needs: its
#: cross-entropy terms are jackknife bias-corrected (``bvsim.task.Task.min_sets``), so a
#: classification sweep needs ``sweep.n_reps`` at least this.
MIN_SETS_CROSS_ENTROPY = 3

#: The crossed design's factors as anova.csv's terms and run.json's ``crossed_factors``
#: name them (:func:`bvsim.config.crossed_factors`): the training inputs (``sample`` for
#: data from a file: the drawn rows), the label noise and the initialization.
FACTOR_INPUTS, FACTOR_ROWS, FACTOR_NOISE, FACTOR_INIT = "inputs", "sample", "label_noise", "init"


def open_unit(v):
    return None if 0 < v < 1 else "must be in (0, 1)"


def weight_decay_grid(values):
    if len(values) == 0:
        return "must be a non-empty list of weight-decay values"
    for v in values:
        if not math.isfinite(v) or v < 0:
            return f"every value must be finite and >= 0 (got {v!r})"
    if len(set(values)) != len(values):
        dup = sorted({v for v in values if values.count(v) > 1})
        return f"must not repeat a value (repeated: {dup})"
    return None


def hidden_widths(values):
    if any(v < 1 for v in values):
        return "every hidden width must be a positive integer"
    return None


def betas(values):
    if len(values) != 2 or not all(0 <= b < 1 for b in values):
        return "must be two numbers in [0, 1)"
    return None
