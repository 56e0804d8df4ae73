"""Figures and report from small synthetic tables (no training, no /tmp fixtures)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bvsim.io.tables import Tables
from bvsim.present import style
from bvsim.present.figures import plot_all, plot_runs
from bvsim.present.report import write_report
from bvsim.present.style import ZERO_GAP_DECADES, LambdaAxis

WDS = np.array([0.0, 1e-3, 1e-2, 1e-1, 1.0])
K, J = 6, 11
BASE = {"decomposition", "fits", "pointwise", "curves", "weight_norm", "weight_hist"}


_HOUSE_DPI = style.DPI


@pytest.fixture(autouse=True)
def _low_dpi(monkeypatch):
    monkeypatch.setattr(style, "DPI", 60)  # PNGs still real, just quicker to write


def _fake_run(run_dir, n_seeds: int = 1, dead: float | None = None) -> Tables:
    """Tables with the exact columns of a run, plus predictions.npz in ``run_dir``.

    ``dead``: a λ whose every member diverged (NaN estimates, status all_diverged).
    """
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, J)
    f = 1.5 * x
    shrink = 1 / (1 + 3 * WDS)  # (n_wd,)
    wiggle = rng.normal(0, 0.3, (len(WDS), K, n_seeds, J)) * shrink[:, None, None, None]
    pred = shrink[:, None, None, None] * f + wiggle
    dead_i = None if dead is None else int(np.flatnonzero(WDS == dead)[0])
    if dead_i is not None:
        pred[dead_i] = np.nan
    run_dir.mkdir(parents=True, exist_ok=True)
    np.savez(run_dir / "predictions.npz", weight_decay=WDS, pred=pred, x_test=x[:, None])

    rows, points, curves, members, hist = [], [], [], [], []
    steps = np.arange(0, 101, 20)
    for i, wd in enumerate(WDS):
        p = pred[i]
        row = {"weight_decay": wd, "n_reps": K, "n_seeds": n_seeds, "noise": 0.09}
        if i == dead_i:
            row |= {"n_reps_used": 0, "n_diverged": K * n_seeds, "status": "all_diverged"}
            rows.append(row)
            continue
        m = p.mean(axis=(0, 1))
        b2 = (m - f) ** 2 - p.mean(axis=1).var(axis=0, ddof=1) / K
        var = p.reshape(-1, J).var(axis=0, ddof=1)
        se = 0.2 * var / np.sqrt(K) + 1e-4
        row |= {
            "n_reps_used": K, "n_diverged": int(i == 1), "status": "ok",
            "bias2": b2.mean(), "bias2_se": se.mean(), "variance": var.mean(),
            "variance_se": se.mean(), "variance_data": 0.7 * var.mean(),
            "variance_data_se": se.mean(),
            "variance_init": 0.3 * var.mean() if n_seeds > 1 else np.nan,
            "variance_init_se": se.mean() if n_seeds > 1 else np.nan,
            "train_error": 0.01 + wd, "train_error_se": 0.001,
            "weight_norm": 10 / (1 + 10 * wd), "weight_norm_se": 0.1,
        }  # fmt: skip
        row["expected_error"] = row["bias2"] + row["variance"] + 0.09
        row["expected_error_se"] = 1.5 * se.mean()
        row["test_error"] = row["expected_error"] + 0.002
        row["test_error_se"] = 1.6 * se.mean()
        rows.append(row)
        points.append(
            pd.DataFrame(
                {
                    "weight_decay": wd,
                    "point": np.arange(J),
                    "x": x,
                    "truth": f,
                    "mean_prediction": m,
                    "bias2": b2,
                    "bias2_se": se,
                    "variance": var,
                    "variance_se": se,
                }
            )  # fmt: skip
        )
        for split, level in (("train", 0.01 + wd), ("test", 0.1 + wd)):
            loss = level + np.exp(-steps / 30)
            curves.append(
                pd.DataFrame(
                    {
                        "weight_decay": wd,
                        "step": steps,
                        "split": split,
                        "loss": loss,
                        "loss_se": 0.05 * loss,
                    }
                )  # fmt: skip
            )
        edges = np.linspace(-1, 1, 9)
        for layer in (1, 2, 3):
            counts = rng.integers(0, 50, len(edges) - 1)
            hist.append(
                pd.DataFrame(
                    {
                        "weight_decay": wd,
                        "layer": layer,
                        "bin_left": edges[:-1],
                        "bin_right": edges[1:],
                        "count": counts,
                    }
                )  # fmt: skip
            )
    for i, wd in enumerate(WDS):
        for k in range(K):
            for s in range(n_seeds):
                gone = i == dead_i
                members.append(
                    {"weight_decay": wd, "rep": k, "seed": s, "train_error": 0.01,
                     "test_error": np.nan if gone else 0.2, "mse_truth": 0.1,
                     "weight_norm": 1.0, "diverged": gone, "diverged_step": 50 if gone else -1}
                )  # fmt: skip
    summary = pd.DataFrame(rows)
    summary["is_best"] = summary.index == summary["expected_error"].idxmin()
    meta = {"name": "fake-run", "n_members": len(WDS) * K * n_seeds, "device": "cpu"}
    return Tables(
        summary=summary,
        pointwise=pd.concat(points, ignore_index=True),
        curves=pd.concat(curves, ignore_index=True),
        members=pd.DataFrame(members),
        weight_hist=pd.concat(hist, ignore_index=True),
        meta=meta,
    )


def _check_written(paths, run_dir, names):
    assert {p.stem for p in paths} == names
    for name in names:
        for ext in ("png", "pdf"):
            f = run_dir / "figures" / f"{name}.{ext}"
            assert f in paths and f.stat().st_size > 1000, f


def test_plot_runs_in_processes_writes_the_same_bytes(tmp_path, monkeypatch):
    """Two runs drawn by two processes (as a second axis's values are) give the files
    that drawing them one after the other gives."""
    monkeypatch.setattr(style, "DPI", _HOUSE_DPI)  # the workers draw at the house DPI

    def light(run_dir):  # three figures a run: decomposition, pointwise, weight norm
        t = _fake_run(run_dir)
        (run_dir / "predictions.npz").unlink()
        return dataclasses.replace(t, curves=t.curves.iloc[:0], weight_hist=t.weight_hist.iloc[:0])

    runs = {n: [(light(tmp_path / n / f"v{i}"), tmp_path / n / f"v{i}") for i in range(2)]
            for n in ("one", "two")}  # fmt: skip
    serial, parallel = plot_runs(runs["one"], n_jobs=1), plot_runs(runs["two"], n_jobs=2)
    assert len(serial) == len(parallel) == 2 * 3 * 2  # runs x figures x (png, pdf)
    for a, b in zip(serial, parallel, strict=True):
        assert a.relative_to(tmp_path / "one") == b.relative_to(tmp_path / "two")
        assert a.read_bytes() == b.read_bytes(), a.name


def test_plot_all_and_report(tmp_path):
    run = tmp_path / "run"
    tables = _fake_run(run)
    paths = plot_all(tables, run)
    _check_written(paths, run, BASE)

    report = write_report(tables, run).read_text()
    best = tables.summary.loc[tables.summary["is_best"], "weight_decay"].iloc[0]
    assert f"Best λ = {best:g}" in report
    assert "| λ | bias² | variance |" in report
    assert report.count("\n| ") == 1 + 1 + len(WDS) - 1  # header, rule, one row per λ
    assert "![decomposition](figures/decomposition.png)" in report
    assert f"bvsim sweep {run}/config.toml --out {run}" in report
    assert "variance_split" not in report


@pytest.mark.parametrize(
    ("resumed", "says"),
    [
        (0, "training took 83 s on"),
        (2, "training took 83 s (2 of 5 chunks resumed)"),
        (5, "every chunk was resumed from an earlier run's chunk files (120 s of chunk"),
    ],
)
def test_report_says_when_training_was_resumed(tmp_path, resumed, says):
    run = tmp_path / "run"
    tables = _fake_run(run)
    tables.meta |= {"train_seconds": 83.2, "n_chunks": 5, "n_chunks_resumed": resumed,
                    "chunk_seconds_total": 120.0, "device": "cpu"}  # fmt: skip
    assert says in write_report(tables, run).read_text()


def test_two_seeds_and_an_all_diverged_row(tmp_path):
    """n_seeds = 2 adds variance_split; a λ with NaN estimates must not crash anything."""
    run = tmp_path / "run"
    tables = _fake_run(run, n_seeds=2, dead=1e-2)
    assert tables.summary["bias2"].isna().sum() == 1
    paths = plot_all(tables, run)
    _check_written(paths, run, BASE | {"variance_split"})
    report = write_report(tables, run).read_text()
    assert "figures/variance_split.png" in report
    assert "λ = 0.01 (all_diverged)" in report
    assert "| 0.01 | — | — |" in report


def test_missing_predictions_and_pointwise_skip_figures(tmp_path):
    run = tmp_path / "run"
    tables = _fake_run(run)
    (run / "predictions.npz").unlink()
    tables.pointwise = pd.DataFrame()
    paths = plot_all(tables, run)
    _check_written(paths, run, BASE - {"fits", "pointwise"})
    assert "figures/fits.png" not in write_report(tables, run).read_text()


@pytest.mark.parametrize("grid", [[0.0, 1e-4, 1.0], [1e-3, 1e-1], [0.0]])
def test_lambda_axis_places_zero_left_of_smallest(grid):
    axis = LambdaAxis(grid)
    pos = axis.pos(grid)
    assert np.all(pos > 0)
    positive = [g for g in grid if g > 0]
    if positive and 0.0 in grid:
        assert pos[0] == pytest.approx(min(positive) / 10**ZERO_GAP_DECADES)
        assert pos[0] < axis.break_at < min(positive)
    np.testing.assert_allclose(pos[np.asarray(grid) > 0], positive)


@pytest.mark.parametrize("preset", ["wine", "seed-demo"])
def test_reproduce_names_the_shipped_preset(tmp_path, preset):
    """A run of an unmodified preset (a CSV one included, whose columns the sweep
    fills in) is reproduced by the preset's name, which run.json notes (``preset``);
    a changed preset, or an older run.json without the note, by its config.toml."""
    from bvsim import load_config
    from bvsim.api import _unchanged_preset
    from bvsim.present.common import reproduce_lines as _reproduce

    assert _unchanged_preset(load_config(preset=preset)) == preset
    assert _unchanged_preset(load_config(preset=preset, overrides=["sweep.n_reps=3"])) is None
    meta = {"name": preset, "preset": preset}
    assert f"bvsim sweep --preset {preset}" in "\n".join(_reproduce(meta, tmp_path))
    assert "--preset" not in "\n".join(_reproduce({"name": preset}, tmp_path))


@pytest.mark.parametrize("name", ["cost$", "a$b$c", r"x_$\frac", "$$"])
def test_run_name_with_dollar_is_drawn_literally(tmp_path, name):
    """A run name with ``$`` is text, not mathtext (an unpaired ``$`` made matplotlib
    raise after training)."""
    from bvsim.present.lambda_figures import _run_title, fig_decomposition

    run = tmp_path / "run"
    tables = _fake_run(run)
    tables.meta["name"] = name
    title = _run_title(tables.meta, tables.summary)
    assert title.startswith(name.replace("$", r"\$") + ":")
    fig = fig_decomposition(tables.summary, meta=tables.meta)
    fig.canvas.draw()  # the title is parsed here
    assert "\n" + title in fig.axes[0].get_title()
    paths = plot_all(tables, run)
    _check_written(paths, run, BASE)


def test_one_logged_step_draws_no_curves_and_removes_an_old_drawing(tmp_path):
    """An exact solver logs one step per λ: no learning curves to draw (the figure was
    empty: lines without markers), no caption in the report, and the files an earlier
    drawing left are removed by a redraw (``bvsim plot``)."""
    run = tmp_path / "run"
    tables = _fake_run(run)
    _check_written(plot_all(tables, run), run, BASE)
    assert "figures/curves.png" in write_report(tables, run).read_text()
    last = tables.curves["step"].max()
    tables.curves = tables.curves[tables.curves["step"] == last]
    _check_written(plot_all(tables, run), run, BASE - {"curves"})
    assert not (run / "figures" / "curves.png").exists()
    assert not (run / "figures" / "curves.pdf").exists()
    report = write_report(tables, run).read_text()
    assert "figures/curves.png" not in report
    assert "Train and test loss during optimisation" not in report


def test_plot_all_without_steps_removes_an_old_steps_drawing(tmp_path):
    run = tmp_path / "run"
    tables = _fake_run(run)
    (run / "figures").mkdir()
    for name in ("steps", "steps_heatmap"):
        for ext in ("png", "pdf"):
            (run / "figures" / f"{name}.{ext}").write_bytes(b"old")
    (run / "figures" / "notes.png").write_bytes(b"mine")
    _check_written(plot_all(tables, run), run, BASE)
    left = {p.name for p in (run / "figures").iterdir()}
    assert "notes.png" in left and not any(n.startswith("steps") for n in left)


def _lambda_artist_colors(fig) -> dict[str, tuple]:
    """Label → RGBA of the labelled lines and stairs of ``fig``'s axes and legends."""
    from matplotlib.colors import to_rgba

    found = {}
    artists = [(a, a.get_label()) for ax in fig.axes for a in (*ax.get_lines(), *ax.patches)]
    artists += [(h, t.get_text()) for leg in fig.legends
                for h, t in zip(leg.legend_handles, leg.get_texts(), strict=True)]  # fmt: skip
    for a, label in artists:
        label = label.removeprefix("λ = ")
        if label and not label.startswith("_"):
            color = a.get_color() if hasattr(a, "get_color") else a.get_edgecolor()
            found.setdefault(label, to_rgba(color))
    return found


def test_one_lambda_has_one_colour_in_every_figure_of_a_run(tmp_path):
    """pointwise and weight_hist draw 3-4 selected λ, curves and steps all of them:
    each λ keeps the colour of the run's map (its whole grid) in all four."""
    from bvsim.present import figure_makers as makers
    from bvsim.present.common import key_lambdas, lambda_label
    from bvsim.present.steps import fig_steps

    run = tmp_path / "run"
    tables = _fake_run(run)
    s = tables.summary
    s.loc[s["weight_decay"] == 0.1, "expected_error"] = 0.0  # best: mid-grid
    s["is_best"] = s["weight_decay"] == 0.1  # as summary.csv has it
    assert key_lambdas(s, extra=True) == [0.0, 1e-3, 0.1, 1.0]
    r = makers.FigureInput(tables, run)
    expected = {lambda_label(wd): c for wd, c in style.lambda_colors(WDS).items()}
    steps = tables.curves[tables.curves["split"] == "test"].assign(
        bias2=0.1, bias2_se=0.01, variance=0.1, variance_se=0.01, expected_error=0.3,
        expected_error_se=0.01)  # fmt: skip
    steps = steps[steps["weight_decay"] != 1e-3]  # a λ missing from one figure
    drawn = {
        "pointwise": makers.pointwise(r),
        "curves": makers.curves(r),
        "weight_hist": makers.weight_hist(r),
        "steps": fig_steps(steps, colors=r.colors),
    }
    for name, fig in drawn.items():
        seen = {k: v for k, v in _lambda_artist_colors(fig).items() if k in expected}
        assert len(seen) >= 3, (name, seen)
        for label, color in seen.items():
            assert color == pytest.approx(expected[label]), (name, label)


def test_the_exact_lambda_zero_theory_is_a_point_apart_from_the_limit():
    """theory.csv of a random design: exact at λ = 0, the limit above. The figure draws
    the exact value as its own marked point with its own legend entry, not joined to
    the limit by a dotted line that would mix the two."""
    import matplotlib.pyplot as plt

    from bvsim.present.lambda_figures import _theory_lines

    theory = pd.DataFrame({
        "weight_decay": [0.0, 0.01, 0.1], "bias2_theory": [0.0, 0.1, 0.2],
        "variance_theory": [3.3, 2.2, 1.1], "expected_error_theory": [3.5, 2.5, 1.5],
        "kind": ["random_design_exact", "random_design_limit", "random_design_limit"],
    })  # fmt: skip
    fig, ax = plt.subplots()
    _theory_lines(ax, LambdaAxis(theory["weight_decay"].to_numpy()), theory)
    labels = [line.get_label() for line in ax.lines if not line.get_label().startswith("_")]
    assert labels == ["theory (exact, λ = 0)", "theory (Marchenko–Pastur limit)"]
    points = [line for line in ax.lines if len(line.get_xdata()) == 1]
    assert len(points) == 3 and all(p.get_marker() == "x" for p in points)
    plt.close(fig)
