"""What the figures draw, on small hand-made tables: colours, bands, scales, labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import seaborn as sns
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba

from bvsim.present import style

WDS = [0.0, 1e-3, 1e-2, 1e-1, 1.0]
TERMS = ["inputs", "label_noise", "init", "inputs:label_noise", "inputs:init",
         "label_noise:init", "inputs:label_noise:init"]  # fmt: skip


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _anova(terms=TERMS, axis_values=None) -> pd.DataFrame:
    """An ``anova.csv``: each term 0.01·(i+1) at every λ, the variance their sum."""
    rows = []
    for v in axis_values if axis_values is not None else [None]:
        for wd in WDS:
            parts = {t: 0.01 * (i + 1) for i, t in enumerate(terms)}
            total = sum(parts.values())
            for t, value in [*parts.items(), ("variance", total), ("bias2", 0.2)]:
                share = value / total if t in parts else np.nan
                row = {"weight_decay": wd, "term": t, "value": value, "se": 0.1 * value,
                       "share": share, "share_se": 0.05 if t in parts else np.nan}  # fmt: skip
                if v is not None:
                    row = {"n_train": v} | row
                rows.append(row)
    return pd.DataFrame(rows)


def _summary(n_seeds: int = 2) -> pd.DataFrame:
    wd = np.array(WDS)
    var = 0.1 / (1 + wd)
    return pd.DataFrame({
        "weight_decay": wd, "n_reps": 8, "n_seeds": n_seeds, "n_diverged": 0,
        "status": "ok", "bias2": 0.01 + wd, "bias2_se": 0.002, "variance": var,
        "variance_se": 0.01, "variance_data": 0.7 * var, "variance_init": 0.3 * var,
        "noise": 0.09, "noise_se": 0.0, "expected_error": 0.1 + wd + var,
        "expected_error_se": 0.01, "test_error": 0.1 + wd + var, "test_error_se": 0.01,
        "weight_norm": 1 / (1 + wd), "weight_norm_se": 0.05,
        "is_best": wd == 1e-2, "is_one_se": wd == 1e-2,
    })  # fmt: skip


def _fill_colors(ax) -> dict[str, tuple]:
    """Label → RGB of the filled areas of ``ax``."""
    return {c.get_label(): tuple(c.get_facecolor()[0][:3]) for c in ax.collections
            if isinstance(c, PolyCollection) and not c.get_label().startswith("_")}  # fmt: skip


def _decomposition_colors() -> set[tuple]:
    """RGB of the decomposition's curves (bias², variance, noise and the errors)."""
    pal = sns.color_palette("colorblind", 10)
    return {tuple(to_rgba(pal[ci])[:3]) for _, _, ci, _ in style.components(_summary())}


def test_variance_sources_keep_one_colour_and_none_of_the_decompositions():
    """init is one colour in variance_split and anova (it was tan in one and ε's in the
    other); no source takes a colour of bias², variance, noise or the errors (axis_anova
    coloured x, ε, x×ε as axis_curves colours bias², variance, expected error)."""
    from bvsim.present.anova import fig_axis_anova
    from bvsim.present.variance_figures import fig_anova, fig_variance_split

    split = _fill_colors(fig_variance_split(_summary()).axes[0])
    anova = _fill_colors(fig_anova(_anova()).axes[0])
    init = split["variance from the initialisation seed"]
    assert anova["init"] == pytest.approx(init)
    assert len(set(anova.values())) == len(TERMS)
    taken = _decomposition_colors()
    assert not (set(anova.values()) | set(split.values())) & taken

    fig = fig_axis_anova(_anova(TERMS[:4], axis_values=[10, 20, 40]), "n_train")
    lines = {ln.get_label(): to_rgba(ln.get_color())[:3] for ln in fig.axes[0].get_lines()}
    assert lines["init"] == pytest.approx(init)
    assert not {lines[k] for k in ("x", "ε", "x × ε")} & taken


def test_the_total_over_a_stack_has_error_bars_not_a_band():
    """A translucent ±2 SE band over the stacked areas shaded them into extra tones: the
    only filled areas are the stacked sources; the total's SE is drawn as error bars."""
    from bvsim.present.variance_figures import fig_anova, fig_variance_split

    for fig, n_parts in ((fig_variance_split(_summary()), 2), (fig_anova(_anova()), 7)):
        ax = fig.axes[0]
        fills = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(fills) == n_parts
        assert all(not c.get_label().startswith("_") for c in fills)
        assert len(ax.containers) == 1  # the total's error bars


def test_weight_norm_says_the_biases_are_left_out():
    """‖w‖ = 0 at a large λ while the members still spread around a constant: the
    spread is the output bias, which the norm leaves out (results/README.md)."""
    from bvsim.present.figure_table import FIGURE_TABLE
    from bvsim.present.lambda_figures import fig_weight_norm

    assert "biases excluded" in fig_weight_norm(_summary()).axes[0].get_ylabel()
    caption = next(f.caption for f in FIGURE_TABLE if f.name == "weight_norm")
    assert "biases excluded" in caption


def _steps() -> pd.DataFrame:
    rows = []
    for wd in WDS:
        for step in (0, 20, 40, 100, 1000):
            e = 0.9 if wd == 1.0 else 0.2 + 0.1 * np.exp(-step / 50)
            rows.append({"weight_decay": wd, "step": step, "bias2": e - 0.1, "bias2_se": 0.01,
                         "variance": 0.05, "variance_se": 0.01, "expected_error": e,
                         "expected_error_se": 0.01})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_early_stopping_legend_covers_no_curve():
    """The star/diamond legend sat inside the expected-error panel, on the largest λ's
    curve: it goes outside the axes."""
    from bvsim.present.steps import fig_steps

    early = {"weight_decay_min": 0.0, "best_step": 40, "early_stopping_error": 0.21,
             "best_weight_decay": 0.1, "last_step": 1000, "weight_decay_error": 0.2,
             "diff": 0.01, "diff_se": 0.005, "n_common": 8}  # fmt: skip
    fig = fig_steps(_steps(), early)
    fig.canvas.draw()
    assert all(ax.get_legend() is None for ax in fig.axes)
    marks = [leg for leg in fig.legends if "best step" in leg.get_texts()[0].get_text()]
    assert len(marks) == 1
    box = marks[0].get_window_extent()
    assert all(not box.overlaps(ax.get_window_extent()) for ax in fig.axes)


def _heavy(summary: pd.DataFrame) -> pd.DataFrame:
    """λ = 0 at the interpolation threshold: expected error ~4000 ± 2600 (n = p)."""
    s = summary.copy()
    zero = s["weight_decay"] == 0
    s.loc[zero, ["variance", "expected_error", "test_error"]] = [4100.0, 4105.0, 4105.0]
    s.loc[zero, ["variance_se", "expected_error_se", "test_error_se"]] = 2630.0
    return s


def _band_vertices(ax) -> np.ndarray:
    """The y of every vertex of ``ax``'s filled areas (the ±2 SE bands)."""
    ys = [p.vertices[:, 1] for c in ax.collections if isinstance(c, PolyCollection)
          for p in c.get_paths()]  # fmt: skip
    return np.concatenate(ys) if ys else np.array([])


def test_a_heavy_tailed_lambda_neither_draws_a_negative_error_nor_flattens_the_rest():
    """double-descent n = 40: λ = 0's ±2 SE band reached −1200 and set a linear axis on
    which the other λ, the best included, lay on 0."""
    from bvsim.present.axis_figures import fig_axis_decomposition
    from bvsim.present.lambda_figures import fig_decomposition

    s = _heavy(_summary(n_seeds=1))
    ax = fig_decomposition(s).axes[0]
    assert ax.get_yscale() == "symlog" and "symlog" in ax.get_ylabel()
    assert _band_vertices(ax).min() >= 0
    # the smaller errors are decades apart on the axis, not squashed onto 0
    scale = ax.yaxis.get_transform()
    small = scale.transform([0.1, 0.2])
    big = scale.transform([0.0, 4105.0])
    assert (small[1] - small[0]) > 0.02 * (big[1] - big[0])

    both = pd.concat([_summary(1).assign(n_train=20), s.assign(n_train=40)])
    fig = fig_axis_decomposition(both, "n_train")
    assert [a.get_yscale() for a in fig.axes[:2]] == ["linear", "symlog"]
    assert all(_band_vertices(a).min() >= 0 for a in fig.axes[:2])


def test_one_wide_band_runs_off_the_axis_instead_of_setting_it():
    from bvsim.present.lambda_figures import fig_decomposition

    s = _summary(n_seeds=1)
    s.loc[s["weight_decay"] == 0, "variance_se"] = 5.0  # estimates ≤ 1.2, one SE of 5
    ax = fig_decomposition(s).axes[0]
    assert ax.get_yscale() == "linear"
    top = ax.get_ylim()[1]
    assert s["expected_error"].max() < top < 2.5 * s["expected_error"].max()


def test_a_band_reaching_zero_on_a_log_axis_is_a_half_bar():
    """axis_best, log y: the band's negative lower edge filled down to the axis' bottom,
    as if the error could be that small there."""
    from bvsim.present.axis_figures import fig_axis_best

    parts = []
    for n in (20, 30, 40, 50, 60):
        s = _summary(n_seeds=1).assign(n_train=n)
        parts.append(_heavy(s) if n == 40 else s)
    ax = fig_axis_best(pd.concat(parts), "n_train").axes[1]
    assert ax.get_yscale() == "log"
    assert _band_vertices(ax).min() > 0  # no fill to the bottom
    bars = [c for c in ax.containers if c.has_yerr]
    assert len(bars) == 1
    (segment,) = bars[0].lines[2][0].get_segments()
    assert segment[:, 1] == pytest.approx([4105.0, 4105.0 + 2 * 2630.0])  # the upper half


def _pointwise(dwarf_variance_at: float | None = None) -> pd.DataFrame:
    """``pointwise.csv`` of 40 test points (x: a first coordinate, unsorted)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    parts = []
    for wd in WDS:
        var = rng.uniform(0.05, 0.2, x.size) / (1 + wd)
        if wd == dwarf_variance_at:
            var = var * 1e4
        parts.append(pd.DataFrame({
            "weight_decay": wd, "point": np.arange(x.size), "x": x, "truth": x,
            "mean_prediction": x, "bias2": rng.normal(0.01, 0.01, x.size) * (1 + wd),
            "bias2_se": 0.01, "variance": var, "variance_se": 0.4 * var}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def test_pointwise_of_several_dimensions_draws_bars_not_bands():
    """Against the first of several coordinates, neighbouring dots are not neighbouring
    test points: a band through them was a jagged polygon; each point gets its bar."""
    from bvsim.present.lambda_figures import fig_pointwise

    pw = _pointwise()
    fig = fig_pointwise(pw, [0.0, 0.1, 1.0], one_d=False)
    for ax in fig.axes[:2]:
        assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(ax.containers) == 3  # one set of error bars per λ
        bars = ax.containers[0].lines[2][0].get_segments()
        assert len(bars) == pw["point"].nunique()
        assert min(seg[:, 1].min() for seg in bars) >= min(0.0, pw["bias2"].min())
    assert "bars: ±2 SE" in fig.texts[0].get_text()
    one_d = fig_pointwise(pw, [0.0, 0.1, 1.0], one_d=True)
    assert [c for c in one_d.axes[0].collections if isinstance(c, PolyCollection)]
    from bvsim.present.figure_table import FIGURE_TABLE

    caption = next(f.caption for f in FIGURE_TABLE if f.name == "pointwise")
    assert "each with its own bar" in caption and "When one λ dwarfs" in caption


def test_pointwise_zooms_on_whichever_lambda_dwarfs_the_others():
    """At the interpolation threshold λ = 0 (the smallest) dwarfs the variance of every
    other λ: a zoomed panel leaves it out (the zoom came only for the largest λ)."""
    from bvsim.present.lambda_figures import fig_pointwise

    fig = fig_pointwise(_pointwise(dwarf_variance_at=0.0), [0.0, 0.01, 0.1, 1.0], one_d=False)
    titles = {ax.get_title(): ax for ax in fig.axes}
    zoomed = titles["variance, zoomed: λ = 0 left out"]
    assert [t.get_label() for t in zoomed.containers] == ["λ = 0.01", "λ = 0.1", "λ = 1"]
    assert zoomed.get_ylim()[1] < 10  # the others' scale, not λ = 0's (~2000)
    assert not any("bias²" in t and "zoomed" in t for t in titles)  # no bias² dwarfs


@pytest.mark.parametrize(
    ("kind", "title", "bias", "floor"),
    [
        ("squared", "bias² (", "bias²", "noise σ² (test floor)"),
        ("file", "bias² + noise (noise unknown", "bias² + noise", None),  # diabetes
        ("entropy", "bias: KL(p ‖ π̄)", "KL bias", "noise: entropy H(p), nats (test floor)"),
        ("entropy-file", "bias + noise: KL(labels ‖ π̄)", "KL bias + noise", None),  # wine
    ],
)
def test_labels_say_what_the_terms_are_without_a_known_noise_or_with_cross_entropy(
    tmp_path, kind, title, bias, floor
):
    """pointwise titled bias² what is bias² + noise (noise unknown) or a KL term, and
    curves called the entropy of a cross-entropy run "noise σ²"."""
    from bvsim.present import figure_makers as makers
    from tests.present.test_figures import _fake_run

    tables = _fake_run(tmp_path / "run")
    s = tables.summary
    if kind.endswith("file"):
        s["bias2_includes_noise"], s["noise"] = True, np.nan
    if kind.startswith("entropy"):
        s["loss"] = "cross_entropy"
    run = makers.FigureInput(tables, tmp_path / "run")
    pointwise = makers.pointwise(run)
    titles = [ax.get_title() for ax in pointwise.axes if ax.get_title()]
    assert titles[0].startswith(title)
    assert all(ax.get_ylabel().startswith((bias, "variance", "KL variance"))
               for ax in pointwise.axes if ax.get_ylabel())  # fmt: skip
    assert pointwise.texts[0].get_text().startswith(f"Pointwise {bias} and ")
    labels = [t.get_text() for leg in makers.curves(run).legends for t in leg.get_texts()]
    noise = [t for t in labels if "noise" in t]
    assert noise == ([floor] if floor else [])


def test_captions_do_not_promise_a_noise_line_every_run_draws():
    from bvsim.present.figure_table import FIGURE_TABLE

    caption = {f.name: f.caption for f in FIGURE_TABLE}
    assert "no known noise and no line" in caption["curves"]
    assert "entropy of the true class probabilities" in caption["curves"]
    assert "bias² + noise where the noise is unknown" in caption["pointwise"]
    assert "the noise is unknown, bias² includes it" in caption["decomposition"]


def test_a_dwarfing_total_runs_off_the_stack_instead_of_flattening_it():
    """A crossed sub-run at n = p: λ = 0's variance (~6900) flattened every other λ's
    stack onto 0; the axis follows the others and λ = 0's value is written at the top."""
    from bvsim.present.variance_figures import fig_anova, fig_variance_split

    a = _anova(TERMS[:4])
    zero = a["weight_decay"] == 0
    a.loc[zero, ["value", "se"]] *= 1e5
    ax = fig_anova(a).axes[0]
    others = a.loc[~zero & (a["term"] == "variance"), "value"].max()
    assert others < ax.get_ylim()[1] < 2 * others
    assert any("λ = 0:" in t.get_text() and "off scale" in t.get_text() for t in ax.texts)

    s = _heavy(_summary())
    s["variance_data"], s["variance_init"] = 0.7 * s["variance"], 0.3 * s["variance"]
    ax = fig_variance_split(s).axes[0]
    assert ax.get_ylim()[1] < 1.0 and any("off scale" in t.get_text() for t in ax.texts)


def test_the_decomposition_captions_say_a_negative_bias2_band_goes_below_zero():
    """double-descent n = 40, λ = 0: bias² = −2.69 ± 4.5, its band below 0, under a
    caption that said no band reaches below 0."""
    from bvsim.present.axis_figures import fig_axis_decomposition
    from bvsim.present.figure_table import FIGURE_TABLE
    from bvsim.present.lambda_figures import fig_decomposition

    s = _summary(n_seeds=1)
    s.loc[s["weight_decay"] == 0, ["bias2", "bias2_se"]] = [-0.05, 0.1]
    ax = fig_decomposition(s).axes[0]
    assert _band_vertices(ax).min() == pytest.approx(-0.05)  # to the estimate, not −0.25
    ax = fig_axis_decomposition(s.assign(n_train=40), "n_train").axes[0]
    assert _band_vertices(ax).min() == pytest.approx(-0.05)
    caption = {f.name: f.caption for f in FIGURE_TABLE}
    for name in ("decomposition", "axis_decomposition"):
        assert "except below a negative bias² estimate" in caption[name]
        assert "none below 0" not in caption[name] and "No band reaches" not in caption[name]
