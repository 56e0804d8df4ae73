"""What the terminal shows after `bvsim sweep`: each term with its SE, the best λ
marked, and what the columns are where that is not plain."""

from __future__ import annotations

import pandas as pd

from bvsim.cli import main

FAST = ["--set", "train.steps=60", "--set", "train.log_every=20", "--set", "sweep.n_reps=4"]


def test_the_terminal_table_shows_ses_and_the_best(tmp_path, capsys):
    assert main(["sweep", "--preset", "smoke", *FAST, "--no-figures", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    s = pd.read_csv(tmp_path / "summary.csv")
    header, *rows = out.splitlines()[: len(s) + 1]
    assert header.split() == [
        "weight_decay", "bias2", "variance", "noise", "expected_error", "test_error", "best"
    ]  # fmt: skip
    best = s.index[s["is_best"]][0]
    assert rows[best].rstrip().endswith("*") and sum(r.rstrip().endswith("*") for r in rows) == 1
    assert f"{s['expected_error'][0]:.4g} ± " in rows[0]
    assert "± one SE; * the best λ" in out


def test_data_from_a_file_says_bias2_holds_the_noise(tmp_path, capsys):
    over = ["--set", "sweep.n_reps=4", "--set", "train.steps=60"]
    assert main(["sweep", "--preset", "wine", *over, "--no-figures", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["weight_decay", "bias2+noise", "variance"]
    assert "bias2+noise: data from a file has an unknown noise" in out
    assert "cross-entropy, in nats" in out


def test_a_lambda_without_estimates_does_not_blank_the_others(tmp_path):
    """valid_rows renumbers its rows: the table must mark the rows of the summary."""
    from types import SimpleNamespace

    import numpy as np

    from bvsim.cli import _terminal_table

    s = pd.DataFrame(
        {"weight_decay": [0.0, 1.0], "bias2": [np.nan, 0.5], "bias2_se": [np.nan, 0.1],
         "variance": [np.nan, 0.2], "variance_se": [np.nan, 0.05], "noise": 0.1,
         "noise_se": 0.0, "expected_error": [np.nan, 0.8], "expected_error_se": [np.nan, 0.1],
         "test_error": [np.nan, 0.81], "status": ["all_diverged", "ok"],
         "is_best": [False, True]}
    )  # fmt: skip
    cfg = SimpleNamespace(sweep=SimpleNamespace(axis="none"), data=None)
    import bvsim.cli as cli

    cli_is_cls = cli.is_classification
    try:
        cli.is_classification = lambda cfg: False
        text = _terminal_table(s, cfg)
    finally:
        cli.is_classification = cli_is_cls
    first, second = text.splitlines()[1:3]
    assert first.split()[1:5] == ["—", "—", "—", "—"]
    assert "0.5 ± 0.1" in second and "0.8 ± 0.1" in second and second.endswith("*")
