"""``bvsim plot`` on a finished run: a figure whose input file is gone is kept."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from bvsim.config import BvsimWarning
from bvsim.present import style
from bvsim.present.figures import plot_all
from bvsim.present.report import write_report

from .test_figures import _fake_run


@pytest.fixture(autouse=True)
def _low_dpi(monkeypatch):
    monkeypatch.setattr(style, "DPI", 60)


def test_plot_keeps_the_fits_drawn_when_predictions_npz_is_gone(tmp_path):
    """results/seed-demo-steps keeps no predictions.npz (gitignored): `bvsim plot`
    deleted its fits.png and `bvsim report` then dropped the section."""
    run = tmp_path / "run"
    tables = _fake_run(run)
    plot_all(tables, run)
    fits = [run / "figures" / f"fits.{ext}" for ext in ("png", "pdf")]
    drawn = [f.read_bytes() for f in fits]
    (run / "predictions.npz").unlink()
    with pytest.warns(BvsimWarning) as said:
        paths = plot_all(tables, run)
    assert [f.read_bytes() for f in fits] == drawn
    assert not set(fits) & set(paths)  # kept, not written
    assert {p.stem for p in paths} == {"decomposition", "pointwise", "curves", "weight_norm",
                                       "weight_hist"}  # fmt: skip
    assert [str(w.message) for w in said] == [
        f"{fits[0]} left as drawn: {run / 'predictions.npz'} is missing, so it cannot be redrawn"
    ]
    assert "![fits](figures/fits.png)" in write_report(tables, run).read_text()

    # a fits drawing that no longer applies (no pointwise.csv) still goes, silently
    tables.pointwise = pd.DataFrame()
    with warnings.catch_warnings():
        warnings.simplefilter("error", BvsimWarning)
        plot_all(tables, run)
    assert not any(f.exists() for f in fits)


def test_plot_keeps_the_fits_drawn_when_predictions_npz_is_truncated(tmp_path):
    """The hostile review: a cut predictions.npz gave a raw zipfile.BadZipFile
    traceback from `bvsim plot`; now the drawing is kept with a warning."""
    run = tmp_path / "run"
    tables = _fake_run(run)
    plot_all(tables, run)
    fits = run / "figures" / "fits.png"
    drawn = fits.read_bytes()
    npz = run / "predictions.npz"
    npz.write_bytes(npz.read_bytes()[:200])
    with pytest.warns(BvsimWarning, match="predictions.npz is unreadable"):
        plot_all(tables, run)
    assert fits.read_bytes() == drawn


def test_plot_without_predictions_npz_and_no_earlier_drawing_says_nothing(tmp_path):
    run = tmp_path / "run"
    tables = _fake_run(run)
    (run / "predictions.npz").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", BvsimWarning)
        paths = plot_all(tables, run)
    assert "fits" not in {p.stem for p in paths}
    assert not (run / "figures" / "fits.png").exists()
