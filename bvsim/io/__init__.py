"""Results on disk: the tidy tables (the one CSV/npz writer and reader, with their
columns) and the run directory (file names, lock, clearing, who may write there)."""
