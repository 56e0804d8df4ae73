"""scripts/gram_precision.py runs and prints one row per shape (a toy shape here)."""

from __future__ import annotations

from tests.scripts import load_script

gram_precision = load_script("gram_precision.py")


def test_prints_one_row_per_shape(capsys, monkeypatch):
    monkeypatch.setattr(gram_precision, "SHAPES", [(60, 40, 0.005), (20, 40, 0.005)])
    assert gram_precision.main() == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    assert [int(r.split()[0]) for r in rows] == [60, 20]
    for r in rows:  # float32 errors of either path: rounding, far below 1e-3
        assert all(float(v) < 1e-3 for v in r.split()[3:])
