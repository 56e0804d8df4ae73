"""Data-generating process: truth, test set and training sets, from a seed tree.

Every random draw comes from its own stream of ``numpy.random.SeedSequence(root)``,
keyed by *what* is drawn (training set ``k``, initialization ``(k, s)``, ...), never
by chunk, worker or device. So a result does not depend on how the sweep is split.
All arrays are float64 numpy; the engine casts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import CLASSIFICATION_TRUTHS, Config, ConfigError, DataConfig
from ..config.plugins import load_object
from ..estimate.linear_truth import true_coef
from ..task import CLASSIFICATION, task_for
from .csv import class_labels, data_digest, load_split, training_rows
from .seeds import Stream, crossed_levels, rng

__all__ = [
    "Stream",
    "TestSet",
    "TrainingSets",
    "check_truth",
    "draw_training_sets",
    "make_test_set",
    "rng",
    "truth",
]


def class_means(data: DataConfig) -> np.ndarray:
    """Means of the ``gaussians`` classes, shape (n_classes, dim): evenly spaced on a
    line (dim 1) or on a circle of radius ``class_sep`` in the first two coordinates."""
    c = np.arange(data.n_classes)
    means = np.zeros((data.n_classes, data.dim))
    if data.dim == 1:
        means[:, 0] = data.class_sep * (2 * c / max(data.n_classes - 1, 1) - 1)
    else:
        angle = 2 * np.pi * c / data.n_classes
        means[:, 0] = data.class_sep * np.cos(angle)
        means[:, 1] = data.class_sep * np.sin(angle)
    return means


def class_probabilities(x: np.ndarray, data: DataConfig) -> np.ndarray:
    """True p(class | x) of the ``gaussians`` task (equal priors, identity covariance).

    Returns
    -------
    p : ndarray of shape (n, n_classes)
    """
    means = class_means(data)
    logits = x @ means.T - 0.5 * np.square(means).sum(axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def _draw_labels(gen: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One class per row of ``p`` (n, C), as float class indices."""
    u = gen.random(len(p))
    return np.minimum((np.cumsum(p, axis=1) < u[:, None]).sum(axis=1), p.shape[1] - 1).astype(
        np.float64
    )


def _draw_mixture(gen: np.random.Generator, n: int, data: DataConfig):
    labels = gen.integers(0, data.n_classes, size=n)
    x = class_means(data)[labels] + gen.standard_normal((n, data.dim))
    return x, labels.astype(np.float64)


def truth(x: np.ndarray, data: DataConfig) -> np.ndarray:
    """The noiseless truth f(x).

    Parameters
    ----------
    x : ndarray of shape (n, dim)

    Returns
    -------
    f : ndarray of shape (n,)
    """
    if data.truth == "linear":
        return x @ true_coef(data)
    if data.truth == "sine":
        return np.sin(2 * np.pi * data.frequency * x[:, 0])
    if data.truth == "cubic":
        return x[:, 0] ** 3 - 0.5 * x[:, 0]
    if data.truth in CLASSIFICATION_TRUTHS:  # p(class 1 | x) as a summary
        return class_probabilities(x, data)[:, 1]
    return _user_truth(x, data)


def _real(out: np.ndarray) -> bool:
    """Real numbers (integers, floats or booleans): not complex, not objects or text."""
    return bool(
        np.issubdtype(out.dtype, np.integer)
        or np.issubdtype(out.dtype, np.floating)
        or out.dtype == bool
    )


def _user_truth(x: np.ndarray, data: DataConfig, prefix: str = "") -> np.ndarray:
    """A user's truth function on ``x`` (n, dim), its output checked: numeric, finite,
    of shape (n,) or (n, 1); anything else is a ConfigError naming ``data.truth``
    (after ``prefix``). The one check of its output, at config load
    (:func:`check_truth_function`), before training (:func:`check_truth`) and in use."""
    key = f"{prefix}data.truth = {data.truth!r}"
    f = load_object(data.truth, f"{prefix}data.truth")
    try:
        out = np.asarray(f(x.copy()))
    except Exception as err:
        raise ConfigError(
            f"{key}: calling it on x of shape {x.shape} failed: {type(err).__name__}: {err}"
        ) from None
    if out.shape not in ((len(x),), (len(x), 1)):
        raise ConfigError(
            f"{key}: returned shape {out.shape} for x of shape {x.shape}; expected "
            f"({len(x)},) or ({len(x)}, 1)"
        )
    if not _real(out):
        raise ConfigError(
            f"{key}: returned non-real values (dtype {out.dtype}); it must return real numbers"
        )
    out = out.astype(np.float64).reshape(len(x))
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(
            f"{key}: returned {out[i]} at x = {x[i].tolist()} ({int(bad.sum())} of {len(x)} "
            "points non-finite); it must be finite on the whole x range"
        )
    return out


#: Training sets drawn by :func:`check_truth` (besides the test set).
_CHECKED_SETS = 8


def check_truth(cfg: Config) -> None:
    """Evaluate a user's truth function on the real test points and the first training
    sets, once, before any training: a ConfigError if its output is not finite or of the
    wrong shape there (the config-time probe sees only a few points)."""
    d = cfg.data
    if d.source != "generator" or ":" not in d.truth:
        return
    test = make_test_set(cfg)
    draw_training_sets(cfg, test, np.arange(min(cfg.sweep.n_reps, _CHECKED_SETS)))


def _draw_x(gen: np.random.Generator, n: int, data: DataConfig) -> np.ndarray:
    if data.x_dist == "uniform":
        return gen.uniform(data.x_low, data.x_high, size=(n, data.dim))
    if data.x_dist == "gaussian":
        return gen.standard_normal((n, data.dim))
    if data.x_dist == "grid":
        return np.linspace(data.x_low, data.x_high, n)[:, None]
    raise AssertionError(data.x_dist)


@dataclass(frozen=True)
class TestSet:
    """Test inputs and their noiseless truth; the same for every training set.

    Attributes
    ----------
    x : ndarray of shape (n_test, dim)
    f : ndarray of shape (n_test,)
    noise_var : float
        Variance of the test-label noise: the noise floor of the decomposition (NaN
        when unknown; unused for classification).
    p_true : ndarray of shape (n_test, n_classes) or None
        True class probabilities (classification tasks).
    data_digest : str or None
        A CSV source: the digest of the file's bytes the test set was read from; the
        training sets are drawn from the same bytes (:func:`draw_training_sets`).
    class_labels : list of str or None
        A CSV classification target: the label of each class index 0..C−1.
    """

    x: np.ndarray
    f: np.ndarray
    noise_var: float
    p_true: np.ndarray | None = None
    data_digest: str | None = None
    class_labels: list[str] | None = None


def make_test_set(cfg: Config, digest: str | None = None) -> TestSet:
    """The test set of ``cfg``; a CSV source's from the bytes of digest ``digest``
    (those this process read and checked; default: the file as it is now)."""
    d = cfg.data
    if d.source == "csv":  # labels stand in for the truth; the noise is unknown
        digest = digest or data_digest(cfg)  # the bytes the whole sweep is drawn from
        _, _, x_test, y_test = load_split(cfg, digest)
        p_true, labels = None, None
        if task_for(cfg) is CLASSIFICATION:  # observed labels stand in for p(class | x)
            p_true = np.eye(d.n_classes)[y_test.astype(np.int64)]
            labels = class_labels(cfg, digest)
        nan = float("nan")
        return TestSet(x=x_test, f=y_test, noise_var=nan, p_true=p_true, data_digest=digest,
                       class_labels=labels)  # fmt: skip
    if task_for(cfg) is CLASSIFICATION:
        if d.test_design == "grid":
            x = np.linspace(d.x_low, d.x_high, d.n_test)[:, None]
        else:
            x, _ = _draw_mixture(rng(cfg.seed, Stream.TEST), d.n_test, d)
        p = class_probabilities(x, d)
        return TestSet(x=x, f=p[:, 1], noise_var=float("nan"), p_true=p)
    if d.test_design == "grid":
        x = np.linspace(d.x_low, d.x_high, d.n_test)[:, None]
    else:
        x = _draw_x(rng(cfg.seed, Stream.TEST), d.n_test, d)
    return TestSet(x=x, f=truth(x, d), noise_var=d.test_noise_std**2)


@dataclass(frozen=True)
class TrainingSets:
    """Training sets ``ks`` with fresh noisy test labels for each.

    Attributes
    ----------
    ks : ndarray of shape (n_sets,)
        Global training-set indices.
    x : ndarray of shape (n_sets, n_train, dim)
    y : ndarray of shape (n_sets, n_train)
    y_test : ndarray of shape (n_sets, n_test)
        Test labels f(x_test) + fresh noise, drawn independently per training set, so
        the measured test error is i.i.d. over training sets.
    """

    ks: np.ndarray
    x: np.ndarray
    y: np.ndarray
    y_test: np.ndarray


def draw_training_sets(cfg: Config, test: TestSet, ks) -> TrainingSets:
    """Draw training sets ``ks``; set ``k`` is the same whichever chunk asks for it.
    A CSV source's sets come from the bytes ``test`` was read from (a
    :class:`~bvsim.data.csv.DataChangedError` if the file no longer holds them)."""
    d = cfg.data
    ks = np.asarray(ks, dtype=np.int64)
    if d.source == "csv":
        x_pool, y_pool, _, _ = load_split(cfg, test.data_digest)
        rows = [training_rows(cfg, int(k), len(y_pool)) for k in ks]
        return TrainingSets(
            ks=ks,
            x=np.stack([x_pool[r] for r in rows]),
            y=np.stack([y_pool[r] for r in rows]),
            y_test=np.broadcast_to(test.f, (len(ks), len(test.f))).copy(),
        )
    if task_for(cfg) is CLASSIFICATION:
        return _draw_classification_sets(cfg, test, ks)
    fixed_x = None
    if d.train_design == "fixed":
        fixed_x = _draw_x(rng(cfg.seed, Stream.DESIGN), d.n_train, d)
    if cfg.sweep.design == "crossed":
        return _draw_crossed_sets(cfg, test, ks, fixed_x)
    xs, ys, yts = [], [], []
    for k in ks:
        gen = rng(cfg.seed, Stream.DATA, int(k))
        x = fixed_x if fixed_x is not None else _draw_x(gen, d.n_train, d)
        y = truth(x, d) + d.noise_std * gen.standard_normal(d.n_train)
        y_test = test.f + d.test_noise_std * gen.standard_normal(test.f.shape[0])
        xs.append(x)
        ys.append(y)
        yts.append(y_test)
    return TrainingSets(ks=ks, x=np.stack(xs), y=np.stack(ys), y_test=np.stack(yts))


def _draw_crossed_sets(cfg: Config, test: TestSet, ks: np.ndarray, fixed_x) -> TrainingSets:
    """Training sets of the crossed design: set ``k = a * n_noise + b`` takes the x of
    input level ``a`` (stream (INPUTS, a); the fixed design's x when there is one) and
    the noise vector of level ``b`` (stream (NOISE, b), one value per training slot, so
    one noise draw pairs with every x); its test labels come from (TEST_LABELS, k)."""
    d = cfg.data
    xs, ys, yts = [], [], []
    for k in ks:
        a, b = crossed_levels(int(k), cfg.sweep.n_noise)
        x = fixed_x
        if x is None:
            x = _draw_x(rng(cfg.seed, Stream.INPUTS, a), d.n_train, d)
        noise = rng(cfg.seed, Stream.NOISE, b).standard_normal(d.n_train)
        labels = rng(cfg.seed, Stream.TEST_LABELS, int(k)).standard_normal(len(test.f))
        xs.append(x)
        ys.append(truth(x, d) + d.noise_std * noise)
        yts.append(test.f + d.test_noise_std * labels)
    return TrainingSets(ks=ks, x=np.stack(xs), y=np.stack(ys), y_test=np.stack(yts))


def _draw_classification_sets(cfg: Config, test: TestSet, ks: np.ndarray) -> TrainingSets:
    """Labelled training sets: (x, class) drawn jointly, or x fixed and classes redrawn;
    test labels drawn from the true class probabilities, per training set."""
    d = cfg.data
    fixed_x = None
    if d.train_design == "fixed":
        fixed_x, _ = _draw_mixture(rng(cfg.seed, Stream.DESIGN), d.n_train, d)
        fixed_p = class_probabilities(fixed_x, d)
    xs, ys, yts = [], [], []
    for k in ks:
        gen = rng(cfg.seed, Stream.DATA, int(k))
        if fixed_x is None:
            x, y = _draw_mixture(gen, d.n_train, d)
        else:
            x, y = fixed_x, _draw_labels(gen, fixed_p)
        xs.append(x)
        ys.append(y)
        yts.append(_draw_labels(gen, test.p_true))
    return TrainingSets(ks=ks, x=np.stack(xs), y=np.stack(ys), y_test=np.stack(yts))


def check_truth_function(cfg: Config, prefix: str = "") -> None:
    """Import the user's truth function and try it on a probe batch, when the
    configuration loads (:func:`check_truth` tries it on the real points before
    training)."""
    d = cfg.data
    if ":" not in d.truth:
        return
    key = f"{prefix}data.truth"
    func = load_object(d.truth, key)
    if not callable(func):
        raise ConfigError(f"{key} = {d.truth!r}: not callable")
    probe = np.linspace(-1.0, 1.0, 7 * d.dim).reshape(7, d.dim)
    first, again = (_user_truth(probe, d, prefix) for _ in range(2))
    if not np.array_equal(first, again):  # noise inside f would enter bias² and variance
        raise ConfigError(
            f"{key} = {d.truth!r}: returned other values for the same x on a second call "
            f"(at x = {probe[np.flatnonzero(first != again)[0]].tolist()}); the truth must "
            "be a fixed function of x: the label noise comes from data.noise_std"
        )
