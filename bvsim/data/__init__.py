"""Data: the seed tree (:mod:`.seeds`), the data-generating process: truth, test set
and training sets (:mod:`.generator`), and data from a CSV file (:mod:`.csv`), each
drawn from its own seed-tree streams."""
