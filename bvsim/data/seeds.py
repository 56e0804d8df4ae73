"""The seed tree: one stream of ``numpy.random.SeedSequence(root)`` per kind of draw and
per thing drawn (training set ``k``, member ``(k, s)``, ...), never per chunk, worker or
device, so a result does not depend on how the sweep is split."""

from __future__ import annotations

import numpy as np

__all__ = ["Stream", "crossed_levels", "member_key", "member_word", "node", "node_text", "rng"]


class Stream:
    """First element of a seed-tree key: which kind of draw a stream serves."""

    TEST = 0  # test x (fixed for the whole sweep)
    DATA = 1  # training set k: its x (random design), its labels, its test labels
    INIT = 2  # initialization of member (k, s)
    BATCH = 3  # minibatch order of member (k, s)
    DESIGN = 4  # the fixed design x shared by all training sets
    DROPOUT = 5  # dropout masks of member (k, s)
    INPUTS = 6  # crossed design: training x of input level a
    NOISE = 7  # crossed design: training-label noise vector of noise level b
    CROSSED = 8  # crossed design: (CROSSED, stream, c), member streams of seed level c
    TEST_LABELS = 9  # crossed design: noisy test labels of training set k
    BOOTSTRAP = 100  # the bootstrap resamples behind summary.csv's prob_best (io/summary)


def crossed_levels(k, n_noise: int) -> tuple:
    """Input level ``a`` and noise level ``b`` of training set ``k = a * n_noise + b`` in
    the crossed design (the one place that layout is written)."""
    return k // n_noise, k % n_noise


def member_key(design: str, stream: int, k: int, s: int) -> tuple[int, ...]:
    """Seed-tree key of member (training set ``k``, seed ``s``) for a per-member stream
    (INIT, BATCH, DROPOUT): ``(stream, k, s)`` in the nested design; in the crossed
    design ``(CROSSED, stream, s)``, the same for every training set, so one
    initialization (and minibatch order, dropout masks) meets every (x, noise) pair."""
    if design == "crossed":
        return (Stream.CROSSED, stream, int(s))
    return (stream, int(k), int(s))


def member_word(root: int, design: str, stream: int, k: int, s: int, dtype=np.uint32):
    """The first word (a numpy ``dtype`` scalar) of member (k, s)'s node in ``stream``
    (:func:`member_key`): the seed handed to a generator outside the tree, which each
    caller reduces to the range that generator takes (``torch.manual_seed``, a
    ``random_state``, a dropout key)."""
    seq = node(root, *member_key(design, stream, k, s))
    return seq.generate_state(1, dtype=dtype)[0]


def node(root: int, *key: int) -> np.random.SeedSequence:
    """Seed-tree node ``key`` under root seed ``root``."""
    return np.random.SeedSequence(root, spawn_key=tuple(key))


def node_text(seq: np.random.SeedSequence) -> str:
    """A node as ``run.json`` records it: ``SeedSequence(root, spawn_key=(key,))``."""
    return f"SeedSequence({seq.entropy}, spawn_key={tuple(int(i) for i in seq.spawn_key)})"


def rng(root: int, *key: int) -> np.random.Generator:
    """The generator of seed-tree node ``key`` under root seed ``root``."""
    return np.random.default_rng(node(root, *key))
