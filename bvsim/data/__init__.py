"""Data: the seed tree, the data-generating process (truth, test set, training sets) and
data from a CSV file, each drawn from its own seed-tree streams."""

from .generator import TestSet, TrainingSets, draw_training_sets, make_test_set, truth
from .seeds import Stream, rng

__all__ = ["Stream", "TestSet", "TrainingSets", "draw_training_sets", "make_test_set", "rng",
           "truth"]  # fmt: skip
