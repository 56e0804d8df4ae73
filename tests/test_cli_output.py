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
