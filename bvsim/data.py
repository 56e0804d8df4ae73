"""Data-generating process: truth, test set and training sets, from a seed tree.

Every random draw comes from its own stream of ``numpy.random.SeedSequence(root)``,
keyed by *what* is drawn (training set ``k``, initialization ``(k, s)``, ...), never
by chunk, worker or device. So a result does not depend on how the sweep is split.
All arrays are float64 numpy; the engine casts them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Config, DataConfig

__all__ = [
    "Stream",
    "TestSet",
    "TrainingSets",
    "draw_training_sets",
    "make_test_set",
    "rng",
    "truth",
]


class Stream:
    """First element of a seed-tree key: which kind of draw a stream serves."""

    TEST = 0  # test x (fixed for the whole sweep)
    DATA = 1  # training set k: its x (random design), its labels, its test labels
    INIT = 2  # initialization of member (k, s)
    BATCH = 3  # minibatch order of member (k, s)
    DESIGN = 4  # the fixed design x shared by all training sets
    DROPOUT = 5  # dropout masks of member (k, s)


def rng(root: int, *key: int) -> np.random.Generator:
    """The generator of seed-tree node ``key`` under root seed ``root``."""
    return np.random.default_rng(np.random.SeedSequence(root, spawn_key=tuple(key)))


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
        coef = np.full(data.dim, np.sqrt(data.coef_norm2 / data.dim))
        return x @ coef
    if data.truth == "sine":
        return np.sin(2 * np.pi * data.frequency * x[:, 0])
    if data.truth == "cubic":
        return x[:, 0] ** 3 - 0.5 * x[:, 0]
    from .plugins import load_object  # a user's function (checked at config load)

    f = load_object(data.truth, "data.truth")
    return np.asarray(f(x.copy()), dtype=np.float64).reshape(len(x))


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
        Variance of the test-label noise: the noise floor of the decomposition.
    """

    x: np.ndarray
    f: np.ndarray
    noise_var: float


def make_test_set(cfg: Config) -> TestSet:
    d = cfg.data
    if d.source == "csv":  # labels stand in for the truth; the noise is unknown
        from .dataset import load_split

        _, _, x_test, y_test = load_split(cfg)
        return TestSet(x=x_test, f=y_test, noise_var=float("nan"))
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
    """Draw training sets ``ks``; set ``k`` is the same whichever chunk asks for it."""
    d = cfg.data
    ks = np.asarray(ks, dtype=np.int64)
    if d.source == "csv":
        from .dataset import load_split, training_rows

        x_pool, y_pool, _, _ = load_split(cfg)
        rows = [training_rows(cfg, int(k), len(y_pool)) for k in ks]
        return TrainingSets(
            ks=ks,
            x=np.stack([x_pool[r] for r in rows]),
            y=np.stack([y_pool[r] for r in rows]),
            y_test=np.broadcast_to(test.f, (len(ks), len(test.f))).copy(),
        )
    fixed_x = None
    if d.train_design == "fixed":
        fixed_x = _draw_x(rng(cfg.seed, Stream.DESIGN), d.n_train, d)
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
