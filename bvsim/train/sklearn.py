"""Members trained by a user's scikit-learn style estimator, one ``fit`` each.

The same design as the torch engine (every member its own training set and its own
value of the swept parameter ``model.param``), the same seed tree (``random_state``
drawn from node (INIT, k, s) when the estimator has one and the user did not fix it),
and the same per-member outputs, so estimators, tables and figures need not know.
"""

from __future__ import annotations

import inspect
import traceback
import warnings

import numpy as np

from ..config import BvsimRuntimeWarning, BvsimWarning, Config, ConfigError
from ..config.plugins import load_object
from ..data.generator import draw_training_sets, make_test_set
from ..data.seeds import Stream, member_word
from .engine import EngineResult

__all__ = ["PREDICTION_LIMIT", "check_estimator", "fit_estimators", "random_states"]

#: A fit predicting beyond ± this (or NaN) diverged: the jackknife SEs of the variance
#: hold fourth powers of the predictions, which overflow float64 beyond about 1e75 (an
#: estimator has no train.diverge_threshold).
PREDICTION_LIMIT = 1e50


def _usable(p: np.ndarray, t: np.ndarray) -> bool:
    """Test and training predictions all within ±:data:`PREDICTION_LIMIT` (NaN is not):
    the one rule for the probe and for every fit."""
    return bool(np.abs(p).max() <= PREDICTION_LIMIT and np.abs(t).max() <= PREDICTION_LIMIT)


def random_states(cfg: Config, ks, n_seeds: int) -> np.ndarray:
    """``random_state`` of members (k, s), shape (n_sets, n_seeds)."""
    out = np.empty((len(ks), n_seeds), dtype=np.int64)
    for a, k in enumerate(ks):
        for s in range(n_seeds):
            word = member_word(cfg.seed, cfg.sweep.design, Stream.INIT, k, s)
            out[a, s] = int(word % (2**31 - 1))
    return out


def _default_params(cls, estimator_args: dict) -> dict | None:
    """The constructor's parameters with their values under ``estimator_args``:
    ``get_params()`` of a scikit-learn estimator; for a plain class, the named
    parameters of its ``__init__`` (their defaults, or ``estimator_args``' values).
    None when ``__init__`` also takes ``**kwargs`` (any name may be meant)."""
    if hasattr(cls, "get_params"):
        return cls(**estimator_args).get_params()
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return {}
    params = {}
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params[p.name] = None if p.default is p.empty else p.default
    return params | dict(estimator_args)


def _arguments(cls, cfg: Config):
    """``arguments(value, seed)``: the keyword arguments of one member's estimator, with
    ``model.param`` set to ``value`` and ``random_state`` to ``seed`` where the
    estimator takes one and the user did not fix it. Every value reaches the
    constructor. ``value`` is passed as an int where the parameter counts something:
    its default is an int (n_neighbors), or it is None (max_depth) and every value of
    the grid is a whole number (a grid with a fraction, as max_samples = [0.5, 1.0],
    stays float: 1.0 there means all rows, 1 one row)."""
    m = cfg.model
    defaults = _default_params(cls, m.estimator_args) or {}
    takes_seed = "random_state" in defaults and "random_state" not in m.estimator_args
    default = defaults.get(m.param)
    whole = all(float(v).is_integer() for v in cfg.sweep.weight_decay)
    as_int = (isinstance(default, int) and not isinstance(default, bool)) or (
        default is None and whole
    )

    def arguments(value: float, seed: int) -> dict:
        kwargs = dict(m.estimator_args)
        kwargs[m.param] = int(value) if as_int and value.is_integer() else value
        if takes_seed:
            kwargs["random_state"] = seed
        return kwargs

    return arguments


def _fit_predict(cls, kwargs: dict, x, y, x_test):
    """One member: fit on (x, y); its test and training predictions as float64 of
    shape (n_test,) and (n_train,), and the fitted estimator. Raises what the
    estimator raises, or ValueError/TypeError for predictions of another shape or type."""
    est = cls(**kwargs).fit(x, y)
    p = np.asarray(est.predict(x_test), dtype=np.float64).reshape(len(x_test))
    t = np.asarray(est.predict(x), dtype=np.float64).reshape(len(x))
    return p, t, est


def fit_estimators(
    cfg: Config,
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    weight_decay: np.ndarray,
    seeds: np.ndarray,
) -> EngineResult:
    """Fit one estimator per member and evaluate it.

    Parameters
    ----------
    x : ndarray of shape (members, n_train, dim)
    y : ndarray of shape (members, n_train)
    x_test : ndarray of shape (n_test, dim)
    y_test : ndarray of shape (members, n_test)
    weight_decay : ndarray of shape (members,)
        The value of ``model.param`` for each member.
    seeds : ndarray of int, shape (members,)
        ``random_state`` for estimators that take one.

    Returns
    -------
    EngineResult
        A failed fit counts as diverged: its outputs are NaN and a warning carries
        the first traceback; so does a fit that predicts a non-finite value (a warning
        names the parameter values).
    """
    m = cfg.model
    cls = load_object(m.estimator, "model.estimator")
    arguments = _arguments(cls, cfg)
    members, n_test = len(x), len(x_test)
    pred = np.full((members, n_test), np.nan)
    train = np.full(members, np.nan)
    norm = np.full(members, np.nan)
    failed = np.zeros(members, dtype=bool)
    first_error, non_finite = None, []
    for i in range(members):
        try:
            kwargs = arguments(float(weight_decay[i]), int(seeds[i]))
            p, t, est = _fit_predict(cls, kwargs, x[i], y[i], x_test)
        except Exception:
            failed[i] = True
            first_error = first_error or traceback.format_exc()
            continue
        if not _usable(p, t):
            failed[i] = True
            non_finite.append(float(weight_decay[i]))
            continue
        pred[i] = p
        train[i] = np.mean(np.square(t - y[i]))
        coef = getattr(est, "coef_", None)
        if coef is not None:
            norm[i] = float(np.linalg.norm(np.asarray(coef, dtype=np.float64)))
    if first_error is not None:
        warnings.warn(
            f"{int(failed.sum())} of {members} fits of {m.estimator} failed and count as "
            f"diverged; the first one:\n{first_error}",
            BvsimRuntimeWarning,
            stacklevel=2,
        )
    if non_finite:
        where = ", ".join(f"{v:g}" for v in sorted(set(non_finite)))
        warnings.warn(
            f"{len(non_finite)} of {members} fits of {m.estimator} predicted a non-finite "
            f"value (NaN, inf, or beyond ±{PREDICTION_LIMIT:g}, whose powers overflow the "
            f"estimates' SEs) and count as diverged ({m.param} = {where})",
            BvsimRuntimeWarning,
            stacklevel=2,
        )
    test = np.mean(np.square(pred - y_test), axis=1)
    return EngineResult(
        pred=pred,
        train_error=train,
        weight_norm=norm,
        curve_train=train[:, None].copy(),
        curve_test=test[:, None],
        log_steps=np.array([1]),
        diverged=failed,
        diverged_step=np.where(failed, 1, -1),
        params=np.zeros((members, 0), dtype=np.float32),
    )


#: Rows of the probe test set.
PROBE_TEST_ROWS = 5


def _probe(cfg: Config, cls, prefix: str) -> None:
    """Fit and predict once on the run's own first training set (and the first test
    points), at the grid's values in order until one works: an estimator that fails at
    every value, or whose predictions are not numbers of the right shape, could never
    train a member (every member would count as diverged after all the compute), so
    it is refused here, naming the error."""
    m = cfg.model
    test = make_test_set(cfg)
    first_set = draw_training_sets(cfg, test, [0])
    x, y = first_set.x[0], first_set.y[0]
    x_test = test.x[:PROBE_TEST_ROWS]
    try:
        arguments = _arguments(cls, cfg)
    except Exception as err:
        raise ConfigError(_probe_error(m, prefix, err)) from None
    first = None
    for value in cfg.sweep.weight_decay:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, t, _ = _fit_predict(cls, arguments(float(value), 0), x, y, x_test)
            if not _usable(p, t):
                raise ValueError(f"its predictions are not finite or beyond ±{PREDICTION_LIMIT:g}")
        except Exception as err:
            first = first or err
            continue
        _warn_seed_ignored(cfg, cls, arguments, float(value), (x, y, x_test), p, prefix)
        return
    raise ConfigError(_probe_error(m, prefix, first))


def _warn_seed_ignored(cfg: Config, cls, arguments, value: float, data, p, prefix: str) -> None:
    """With ``sweep.n_seeds > 1``, fit the probe again with another ``random_state``:
    identical predictions say the estimator ignores it here (Ridge's default solver),
    so the seeds of a training set would likely be identical copies: a warning (a
    probe set is evidence, not proof)."""
    if cfg.sweep.n_seeds == 1 or "random_state" not in arguments(value, 0):
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other, _, _ = _fit_predict(cls, arguments(value, 1), *data)
    except Exception:
        return
    if np.array_equal(other, p):
        m = cfg.model
        warnings.warn(
            f"{prefix}sweep.n_seeds = {cfg.sweep.n_seeds}: {m.estimator} gave identical "
            f"predictions on a probe set with two random_state values ({m.param} = "
            f"{value:g}): its fits of a training set are likely identical copies "
            "(initialization variance 0, at n_seeds times the training time); set "
            "sweep.n_seeds = 1 unless it draws at random elsewhere",
            BvsimWarning,
            stacklevel=3,
        )


def _probe_error(m, prefix: str, err: BaseException) -> str:
    what = " ".join(f"{type(err).__name__}: {err}".split())  # one line
    if len(what) > 300:
        what = what[:297] + "..."
    args = f" with model.estimator_args = {m.estimator_args!r}" if m.estimator_args else ""
    return (
        f"{prefix}model.estimator = {m.estimator!r}{args}: fit/predict failed on a probe "
        f"set at every value of sweep.weight_decay (as {m.param}), so no member could "
        f"train: {what}"
    )


def _check_seeds(cfg: Config, params: dict | None, prefix: str) -> None:
    """``sweep.n_seeds > 1`` fits of a training set that nothing random tells apart (an
    estimator without ``random_state``, or with one fixed in ``model.estimator_args``)
    are identical copies: refused in the crossed design (no initialization factor to
    split off), a warning in the nested one (right, at n_seeds times the cost)."""
    m, n_seeds = cfg.model, cfg.sweep.n_seeds
    if n_seeds == 1:
        return
    if "random_state" in m.estimator_args:
        why = "model.estimator_args fixes random_state"
        fix = "leave random_state out (bvsim then gives each fit its own) or set"
    elif params is not None and "random_state" not in params:
        why = f"{m.estimator} takes no random_state"
        fix = "set"
    else:
        return
    what = f"{prefix}sweep.n_seeds = {n_seeds}: {why}, so the fits of a training set are identical"
    if cfg.sweep.design == "crossed":
        raise ConfigError(f"{what}: no initialization factor; {fix} sweep.n_seeds = 1")
    warnings.warn(
        f"{what} copies (initialization variance 0, at {n_seeds} times the training "
        f"time): {fix} sweep.n_seeds = 1",
        BvsimWarning,
        stacklevel=2,
    )


def check_estimator(cfg: Config, prefix: str = "") -> None:
    """A sklearn-style estimator: importable, fit/predict, takes model.param, and fits
    and predicts on a small probe set of the run's shape (see :func:`_probe`)."""
    m = cfg.model
    key = f"{prefix}model.estimator"
    if not m.estimator:
        raise ConfigError(f"{key}: model.kind = 'sklearn' needs model.estimator = 'pkg.mod:Class'")
    cls = load_object(m.estimator, key)
    if not (callable(getattr(cls, "fit", None)) and callable(getattr(cls, "predict", None))):
        raise ConfigError(f"{key} = {m.estimator!r}: has no fit and predict methods")
    try:
        params = _default_params(cls, m.estimator_args)
    except Exception as err:
        raise ConfigError(
            f"{prefix}model.estimator_args = {m.estimator_args!r}: {m.estimator} does not "
            f"accept them: {type(err).__name__}: {err}"
        ) from None
    if params is not None and m.param not in params:
        raise ConfigError(
            f"{prefix}model.param = {m.param!r}: not a parameter of {m.estimator}; "
            f"its parameters: {', '.join(sorted(params)) or 'none'}"
        )
    if cfg.train.solver != "gd":  # (model.dropout needs hidden layers: config.checks)
        raise ConfigError(f"{prefix}model.kind = 'sklearn' trains with the estimator's fit only")
    _check_seeds(cfg, params, prefix)
    _probe(cfg, cls, prefix)
