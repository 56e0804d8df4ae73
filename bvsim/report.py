"""``report.md`` of a finished run: findings computed from the tables, a summary table,
the figures with captions, and how to reproduce the run.

Every number in the report is computed from :class:`bvsim.tables.Tables`; nothing is
hard-coded. Where two estimates are compared, their standard errors are combined as
``sqrt(se1**2 + se2**2)``, i.e. as if independent. The λ of one run share training sets
(and test labels), so their errors are positively correlated and this combined SE
overstates the SE of a difference between two λ: comparisons across λ err on the side
of "not distinguishable".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .store import write_text_atomic
from .tables import Tables

__all__ = ["findings", "summary_table", "theory_agreement", "write_report"]

_VALID = ("ok", "some_diverged")

_CAPTIONS = {
    "decomposition": (
        "Bias², variance and noise versus weight decay λ, with their sum (expected error) "
        "and the test error measured directly on noisy test labels; bands are ±2 SE. "
        "Bias² is bias-corrected (unbiased), so it can be slightly negative where the true "
        "bias is near zero. λ = 0 is drawn left of the axis break (//)."
    ),
    "fits": (
        "Fitted functions of individual members (thin lines) at the smallest, best and "
        "largest λ, with the truth (dashed) and the mean prediction over training sets."
    ),
    "pointwise": (
        "Bias² and variance at each test input for a few λ, with ±2 SE bands. Bias² is "
        "bias-corrected and may dip slightly below zero; when the largest λ dwarfs the "
        "others, a zoomed panel leaves it out."
    ),
    "curves": (
        "Train and test loss during optimisation, averaged over training sets, one line "
        "per λ (log scale). The test loss is measured on noisy labels, so its expectation "
        "cannot fall below the noise variance (dashed)."
    ),
    "weight_norm": (
        "Mean weight norm of the trained members versus λ (±2 SE). λ = 0 is drawn left of "
        "the axis break (//)."
    ),
    "weight_hist": (
        "Histograms of the weights of training set 0, per layer, at a few λ; counts on a "
        "log scale above 1."
    ),
    "variance_split": (
        "Variance split into the part due to the training data and the part due to the "
        "initialisation seed, stacked; the line is the total variance with ±2 SE. "
        "λ = 0 is drawn left of the axis break (//)."
    ),
}
_ORDER = tuple(_CAPTIONS)


def _lam(value: float) -> str:
    return "0" if value == 0 else f"{value:g}"


def _num(value: float, sig: int = 4) -> str:
    """A number to ``sig`` significant digits; NaN as an em dash."""
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:.{sig}g}"


def _pm(value: float, se: float) -> str:
    """``value ± se`` (value to 4, SE to 2 significant digits)."""
    if value is None or not np.isfinite(value):
        return "—"
    if se is None or not np.isfinite(se):
        return _num(value)
    return f"{_num(value)} ± {_num(se, 2)}"


def _pct(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{100 * value:.1f} %"


def _ratio_se(num: float, num_se: float, den: float, den_se: float) -> float:
    """Delta-method SE of ``num / den`` (independent errors)."""
    if den == 0:
        return math.nan
    return abs(num / den) * math.hypot(num_se / num if num else 0.0, den_se / den)


def _valid(summary: pd.DataFrame) -> pd.DataFrame:
    ok = summary["expected_error"].notna()
    if "status" in summary:
        ok &= summary["status"].isin(_VALID)
    return summary[ok].sort_values("weight_decay").reset_index(drop=True)


def _is_classification(summary: pd.DataFrame) -> bool:
    return "loss" in summary and bool((summary["loss"] == "cross_entropy").any())


def _zero_one_finding(s: pd.DataFrame, best) -> str | None:
    if "zero_one_error" not in s or pd.isna(best.get("zero_one_error")):
        return None
    return (
        f"0-1 loss at the best λ (Domingos 2000; the terms add up exactly): error "
        f"{_pm(best['zero_one_error'], best['zero_one_error_se'])} = noise term "
        f"{_num(best['zero_one_noise_term'])} + bias {_num(best['zero_one_bias'])} + "
        f"variance term {_num(best['zero_one_variance_term'])} (unweighted variance "
        f"{_num(best['zero_one_variance'])})."
    )


def findings(summary: pd.DataFrame) -> list[str]:
    """Factual statements computed from ``summary.csv``, one markdown bullet each.

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``: one row per λ.

    Returns
    -------
    list of str
        Bullet texts (without the leading ``-``).
    """
    out: list[str] = []
    s = summary.sort_values("weight_decay").reset_index(drop=True)
    if "bias2_includes_noise" in s and s["bias2_includes_noise"].astype(bool).any():
        out.append(
            "**The noise is unknown** (the data come from a file, with no generator): the "
            "test labels stand in for the truth, so every bias² below is **bias² + noise** "
            "and the expected error is bias² + noise + variance. The noise is not separated."
        )
        if "noise_estimate" in s and s["noise_estimate"].notna().any():
            out.append(
                f"Rows with repeated x give a noise estimate of "
                f"{_num(s['noise_estimate'].iloc[0])} (pooled within-group variance): "
                "bias² itself is roughly bias2 minus that."
            )
    v = _valid(s)
    if v.empty:
        return ["No weight decay produced estimates (every λ diverged or had too few "
                "converged training sets)."]  # fmt: skip
    ee, ee_se = v["expected_error"].to_numpy(), v["expected_error_se"].to_numpy()
    ib = int(np.argmin(ee))
    best = v.iloc[ib]
    comb = np.sqrt(ee_se**2 + ee_se[ib] ** 2)
    near = [i for i in range(len(v)) if i != ib and ee[i] - ee[ib] <= 2 * comb[i]]
    text = (
        f"**Best λ = {_lam(best['weight_decay'])}**: expected error "
        f"{_pm(best['expected_error'], best['expected_error_se'])} "
        f"(bias² {_pm(best['bias2'], best['bias2_se'])}, "
        f"variance {_pm(best['variance'], best['variance_se'])}, noise {_num(best['noise'])})."
    )
    if near:
        lams = ", ".join(_lam(v.loc[i, "weight_decay"]) for i in near)
        text += (
            f" Within 2 combined SE of the best: λ = {lams}; the optimum is not resolved "
            "more finely than that."
        )
    else:
        text += " No other λ is within 2 combined SE of it."
    out.append(text)

    first = v.iloc[0]
    ref = (
        "λ = 0" if first["weight_decay"] == 0 else f"the smallest λ ({_lam(first['weight_decay'])})"
    )
    if ib != 0:
        e0, s0 = first["expected_error"], first["expected_error_se"]
        eb, sb = best["expected_error"], best["expected_error_se"]
        red = 1 - eb / e0
        red_se = _ratio_se(eb, sb, e0, s0)
        out.append(
            f"Relative to {ref} (expected error {_pm(e0, s0)}), the best λ reduces the "
            f"expected error by {_pct(red)} ± {_pct(red_se)} "
            f"(absolute {_num(e0 - eb)} ± {_num(math.hypot(s0, sb), 2)})."
        )
    else:
        out.append(f"The best λ is {ref} itself: weight decay did not reduce the expected error.")

    share_v = first["variance"] / first["expected_error"]
    share_v_se = _ratio_se(first["variance"], first["variance_se"],
                           first["expected_error"], first["expected_error_se"])  # fmt: skip
    last = v.iloc[-1]
    share_b = last["bias2"] / last["expected_error"]
    share_b_se = _ratio_se(last["bias2"], last["bias2_se"],
                           last["expected_error"], last["expected_error_se"])  # fmt: skip
    out.append(
        f"At {ref}, variance is {_pct(share_v)} ± {_pct(share_v_se)} of the expected error "
        f"(bias² {_num(first['bias2'])}, variance {_num(first['variance'])}, noise "
        f"{_num(first['noise'])}). At the largest λ ({_lam(last['weight_decay'])}), bias² is "
        f"{_pct(share_b)} ± {_pct(share_b_se)} of it."
    )
    neg = v[v["bias2"] < 0]
    if not neg.empty:
        worst = float((neg["bias2"] / neg["bias2_se"]).min())
        out.append(
            f"The bias-corrected bias² is negative at {len(neg)} λ "
            f"({', '.join(_lam(x) for x in neg['weight_decay'])}); the most negative is "
            f"{abs(worst):.1f} SE below zero, consistent with a true bias² near zero."
        )

    te = v["test_error"].notna()
    if te.any():
        diff = (v["test_error"] - v["expected_error"])[te]
        z = diff / np.sqrt(v["test_error_se"][te] ** 2 + v["expected_error_se"][te] ** 2)
        zmax = float(np.abs(z).max())
        verdict = "agrees with" if zmax <= 3 else "does NOT agree with"
        text = (
            f"The measured test error {verdict} bias² + variance + noise within 3 combined "
            f"SE at every λ (max |difference| / SE = {zmax:.2f} at λ = "
            f"{_lam(v.loc[np.abs(z).idxmax(), 'weight_decay'])})."
        )
        if len(diff) > 1 and ((diff > 0).all() or (diff < 0).all()):
            text += (
                f" The difference has the same sign at every λ (mean {diff.mean():+.2g}): the "
                "test labels (and training sets) are shared across λ, so these checks are not "
                "independent, and one realisation of the test noise shifts all of them alike."
            )
        out.append(text)

    var, var_se = v["variance"].to_numpy(), v["variance_se"].to_numpy()
    rises = [i for i in range(1, len(v)) if var[i] > var[i - 1]]
    if rises:
        parts = []
        for i in rises:
            gap = var[i] - var[i - 1]
            z = gap / math.hypot(var_se[i], var_se[i - 1])
            parts.append(
                f"λ = {_lam(v.loc[i, 'weight_decay'])} ({_num(var[i - 1])} → {_num(var[i])}, "
                f"a rise of {z:.1f} combined SE)"
            )
        out.append(
            "Variance is not monotone in λ: it rises from the previous λ at "
            + "; ".join(parts)
            + "."
        )
    elif len(v) > 1:
        out.append("Variance decreases monotonically with λ over the grid.")

    zero_one = _zero_one_finding(v, best)
    if zero_one:
        out.append(zero_one)

    if "variance_init" in v and v["variance_init"].notna().any():
        parts = []
        rows = [("λ = " + _lam(v.iloc[0]["weight_decay"]), v.iloc[0])]
        if best["weight_decay"] != v.iloc[0]["weight_decay"]:
            rows.append((f"the best λ = {_lam(best['weight_decay'])}", best))
        for label, row in rows:
            share = row["variance_init"] / row["variance"] if row["variance"] > 0 else np.nan
            parts.append(
                f"at {label}, {_pct(share)} of the variance is initialization variance "
                f"({_pm(row['variance_init'], row['variance_init_se'])}) and the rest data "
                f"variance ({_pm(row['variance_data'], row['variance_data_se'])})"
            )
        out.append("Variance split (law of total variance): " + "; ".join(parts) + ".")

    n_div = int(s["n_diverged"].fillna(0).sum())
    if n_div:
        per = ", ".join(
            f"λ = {_lam(r.weight_decay)}: {int(r.n_diverged)}"
            for r in s.itertuples()
            if r.n_diverged > 0
        )
        out.append(
            f"{n_div} member(s) diverged and were left out, with their whole training set ({per})."
        )
    else:
        out.append("No member diverged.")
    bad = s[~s["status"].isin(_VALID)] if "status" in s else s.iloc[:0]
    if not bad.empty:
        out.append(
            "No estimates at "
            + ", ".join(f"λ = {_lam(r.weight_decay)} ({r.status})" for r in bad.itertuples())
            + "."
        )
    return out


def theory_agreement(summary: pd.DataFrame, theory: pd.DataFrame | None) -> str | None:
    """One sentence: the largest |Monte Carlo − theory| / SE of bias² and of variance.

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``.
    theory : DataFrame or None
        ``theory.csv`` (:func:`bvsim.theory.theory_table`); None gives None.
    """
    if theory is None or theory.empty:
        return None
    both = _valid(summary).merge(theory, on="weight_decay", how="inner")
    parts = []
    for col, name in (("bias2", "bias²"), ("variance", "variance")):
        mc, se, th = (both[c].to_numpy(float) for c in (col, f"{col}_se", f"{col}_theory"))
        ok = np.isfinite(mc) & np.isfinite(th) & (se > 0)
        if not ok.any():
            continue
        z = np.abs(mc[ok] - th[ok]) / se[ok]
        i = int(np.argmax(z))
        lam = _lam(both["weight_decay"].to_numpy()[ok][i])
        parts.append(f"{z[i]:.2f} for {name} (at λ = {lam})")
    if not parts:
        return None
    kind = str(theory["kind"].iloc[0])
    what = {
        "fixed_design_exact": "the exact closed form for this fixed design",
        "random_design_limit": (
            "the Marchenko–Pastur limit (p, n → ∞ at this p/n, evaluated at these test "
            "points; a finite-n drift of order 1/n is expected)"
        ),
    }.get(kind, kind)
    return (
        f"Ridge theory ({what}; `theory.csv`, dotted black lines in the decomposition "
        f"figure): the largest |Monte Carlo − theory| / SE over {len(both)} λ is "
        + " and ".join(parts)
        + "."
    )


def summary_table(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (values to 4 significant digits, "±" SE).

    Parameters
    ----------
    summary : DataFrame
        ``summary.csv``.
    """
    head = ["λ", "bias²", "variance", "noise", "expected error", "test error", "diverged",
            "status"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.sort_values("weight_decay").itertuples():
        lam = _lam(r.weight_decay) + (" (best)" if bool(r.is_best) else "")
        cells = [
            f"**{lam}**" if bool(r.is_best) else lam,
            _pm(r.bias2, r.bias2_se),
            _pm(r.variance, r.variance_se),
            _num(r.noise),
            _pm(r.expected_error, r.expected_error_se),
            _pm(r.test_error, r.test_error_se),
            str(int(r.n_diverged)) if np.isfinite(r.n_diverged) else "—",
            str(r.status),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _is_unmodified_preset(name: str, run_dir: Path) -> bool | None:
    """Whether ``run_dir/config.toml`` equals preset ``name`` (None: cannot tell)."""
    from .config import dumps_toml, list_presets, load_config

    if name not in list_presets():
        return False
    cfg_file = run_dir / "config.toml"
    if not cfg_file.exists():
        return None
    return cfg_file.read_text() == dumps_toml(load_config(preset=name))


def _reproduce(meta: dict, run_dir: Path) -> list[str]:
    name = meta.get("name", "")
    lines = ["## Reproduce", ""]
    preset = _is_unmodified_preset(name, run_dir) if name else False
    if preset is not False:
        lines += [
            f"This run {'uses' if preset else 'is named after'} the shipped preset "
            f"`{name}`{'' if preset else ' (config.toml is missing, so this is not checked)'}:",
            "",
            "```sh",
            f"bvsim sweep --preset {name}",
            "```",
            "",
        ]
        if name == "seed-demo":
            lines += ["or `make sweep` (which writes `results/seed-demo/`).", ""]
        else:
            lines += [f"or `make sweep PRESET={name}`.", ""]
    lines += [
        "To rerun exactly this configuration, use the `config.toml` saved in the run "
        "directory (rerunning into the same directory resumes from its finished chunks):",
        "",
        "```sh",
        f"bvsim sweep {run_dir}/config.toml --out {run_dir}",
        "```",
        "",
    ]
    device = meta.get("device")
    if device:
        lines += [
            f"This run trained on `{device}`; pass `--device` to choose the device "
            "(the default is `cpu`).",
            "",
        ]
    return lines


def write_report(tables: Tables, out_dir) -> Path:
    """Write ``out_dir/report.md`` from the tables (and the figures already drawn).

    Parameters
    ----------
    tables : Tables
        From :func:`bvsim.tables.read_tables` or :func:`bvsim.tables.summarize`.
    out_dir : path
        The run directory. Figures found in ``out_dir/figures/`` are embedded.

    Returns
    -------
    Path
        The report file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s, meta = tables.summary, tables.meta
    name = meta.get("name", out_dir.name)
    lines = [f"# Bias–variance report: {name}", ""]
    if s.empty:
        lines += ["The summary table is empty: nothing to report.", ""]
    else:
        k, n_seeds = int(s["n_reps"].max()), int(s["n_seeds"].max())
        members = meta.get("n_members")
        lines += [
            f"{len(s)} weight decays λ, {k} training sets × {n_seeds} seed(s) each"
            + (f", {members} trained members in all" if members else "")
            + _training_phrase(meta)
            + (f" on `{meta['device']}`" if "device" in meta else "")
            + (
                ". Errors are cross-entropies (nats) on the test points: in this report and "
                "in `summary.csv`, 'bias²' is the bias term KL(p ‖ π̄) of the exact "
                "cross-entropy decomposition (π̄ the normalized geometric mean of the "
                "members' predicted distributions), 'variance' is mean KL(π̄ ‖ π) and "
                "'noise' the entropy of the true class probabilities (jackknife-corrected)"
                if _is_classification(s)
                else ". Errors are mean squared errors on the test points"
            )
            + "; ± values are Monte Carlo standard errors (SE) over training sets.",
            "",
            *_precision_lines(meta),
            "## Findings",
            "",
            *[f"- {f}" for f in findings(s)],
            *[f"- {t}" for t in [theory_agreement(s, tables.theory)] if t],
            "",
            "Combined SE = sqrt(SE₁² + SE₂²), treating the two estimates as independent. "
            "All λ share the training sets and test labels, so this overstates the SE of a "
            "difference across λ.",
            "",
            "## Summary",
            "",
            summary_table(s),
            "",
            "Bias² is the bias-corrected estimate (the plug-in minus its estimated excess), "
            "unbiased but able to go slightly negative; it is not clipped. Rows with status "
            "other than `ok`/`some_diverged` have no estimates (—).",
            "",
        ]
    figs = [n for n in _ORDER if (out_dir / "figures" / f"{n}.png").exists()]
    if figs:
        lines += ["## Figures", ""]
        for n in figs:
            lines += [f"![{n}](figures/{n}.png)", "", f"*{_CAPTIONS[n]}*", ""]
    lines += _reproduce(meta, out_dir)
    path = out_dir / "report.md"
    write_text_atomic(path, "\n".join(lines).rstrip() + "\n")
    return path


def _precision_lines(meta: dict) -> list[str]:
    """How many training sets a ``sweep.target_se`` run needed, and why it stopped."""
    if "target_se" not in meta:
        return []
    k = meta["n_reps_done"]
    if "target_se reached" in meta["stop_reason"]:
        why = (
            f"it stopped at {k} training sets, the first at which every paired SE of a "
            f"λ's difference from the best, and the SE of the best λ's expected error, "
            f"were at most the target (worst {_num(meta['worst_se'], 3)})"
        )
    else:
        why = (
            f"it used all {k} training sets allowed by sweep.n_reps and still missed the "
            f"target (worst SE {_num(meta['worst_se'], 3)}): raise sweep.n_reps"
        )
    return [
        f"Precision target: sweep.target_se = {meta['target_se']:g}; {why}. Training "
        "sets were added chunk by chunk in seed-tree order, so these results equal a run "
        f"with sweep.n_reps = {k}.",
        "",
    ]


def _training_phrase(meta: dict) -> str:
    """How long training took, saying so when chunks came from an earlier run."""
    if "train_seconds" not in meta:
        return ""
    resumed, chunks = meta.get("n_chunks_resumed", 0), meta.get("n_chunks", 0)
    if chunks and resumed == chunks:
        return (
            "; every chunk was resumed from an earlier run's chunk files "
            f"({meta.get('chunk_seconds_total', 0):.0f} s of chunk training time)"
        )
    text = f"; training took {meta['train_seconds']:.0f} s"
    return text + (f" ({resumed} of {chunks} chunks resumed)" if resumed else "")


def write_axis_report(tables: Tables, out_dir, axis: str) -> Path:
    """``report.md`` of a second-axis sweep: best λ per value, figures, sub-reports."""
    out_dir = Path(out_dir)
    s = tables.summary
    meta = tables.meta
    lines = [
        f"# Bias–variance report: {meta.get('name', out_dir.name)} ({axis} × λ)",
        "",
        f"{len(meta.get('axis_values', []))} values of {axis} crossed with "
        f"{s['weight_decay'].nunique()} weight decays λ; {meta.get('n_members', '?')} trained "
        f"members in all, {meta.get('train_seconds', 0):.0f} s of training. ± values are "
        "Monte Carlo standard errors over training sets. Each value of "
        f"{axis} is a complete run of its own under `axis/` (CSVs, figures, report).",
        "",
        "## Best λ for each value",
        "",
        f"| {axis} | best λ | expected error at best λ | at the smallest λ | reduction | "
        "bias² share at the largest λ | diverged | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    from .api import axis_dir_name

    for value, part in s.groupby(axis, sort=True):
        v = _valid(part)
        sub = axis_dir_name(axis, value)
        if v.empty:
            lines.append(f"| {value:g} | — | — | — | — | — | {int(part['n_diverged'].sum())} "
                         f"| [report](axis/{sub}/report.md) |")  # fmt: skip
            continue
        best = v.loc[v["expected_error"].idxmin()]
        first = v.loc[v["weight_decay"].idxmin()]
        last = v.loc[v["weight_decay"].idxmax()]
        red = 1 - best["expected_error"] / first["expected_error"]
        share = last["bias2"] / last["expected_error"]
        lines.append(
            f"| {value:g} | {_lam(best['weight_decay'])} | "
            f"{_pm(best['expected_error'], best['expected_error_se'])} | "
            f"{_pm(first['expected_error'], first['expected_error_se'])} | {_pct(red)} | "
            f"{_pct(share)} | {int(part['n_diverged'].sum())} | [report](axis/{sub}/report.md) |"
        )
    lines += [
        "",
        "## Figures",
        "",
        "![axis decomposition](figures/axis_decomposition.png)",
        "",
        f"*Bias², variance, noise and their sum against λ, one panel per {axis}; bands ±2 SE. "
        "Bias² is bias-corrected and may be slightly negative; λ = 0 is drawn left of //.*",
        "",
        "![axis heatmap](figures/axis_heatmap.png)",
        "",
        f"*Expected error over {axis} × λ; the best λ of each row is boxed in red.*",
        "",
        "![axis best](figures/axis_best.png)",
        "",
        f"*Left: the best λ of the grid for each {axis}. Right: the expected error at that λ "
        "and at the smallest λ, ±2 SE.*",
        "",
        "## Reproduce",
        "",
        "```sh",
        f"bvsim sweep {out_dir}/config.toml --out {out_dir}",
        "```",
        "",
    ]
    path = out_dir / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path
