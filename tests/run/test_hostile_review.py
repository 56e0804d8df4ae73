"""Hostile inputs of the second review: each is refused before compute with one line
naming the key (``REVIEW``: ``bvsim sweep --preset smoke`` made tiny, exit code 2,
nothing created), or handled through the Python API (the tests below the table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bvsim.cli import main

#: The smoke preset made tiny: a run that gets past the checks would finish in seconds.
TINY = ["--set", "sweep.n_reps=4", "--set", "train.steps=20", "--set", "train.log_every=10"]


def _set(*assignments: str) -> list[str]:
    """``--set`` arguments for ``assignments``."""
    return [arg for a in assignments for arg in ("--set", a)]


def _csv(rows: int = 40, cell: str | None = None) -> str:
    """A regression CSV (a, b -> y); ``cell`` replaces column a of the third row."""
    lines = ["a,b,y"]
    for i in range(rows):
        a = cell if (cell is not None and i == 2) else f"{i / rows:.3f}"
        lines.append(f"{a},{(i * 7 % rows) / rows:.3f},{i * 0.05:.3f}")
    return "\n".join(lines) + "\n"


CSV = _set("data.source=csv", "data.path={tmp}/data.csv")

#: (id, extra arguments of `bvsim sweep --preset smoke`, files to write, message fragments)
REVIEW = [
    # --- 1: the root seed fits the int64 of the chunk files --------------------------
    ("seed_1e30", _set("seed=1e30"), {}, ["seed = 1000000000000000019884624838656", "2**63"]),
    ("seed_2_63", _set("seed=9223372036854775808"), {}, ["seed = 9223372036854775808"]),
    # --- 2: the run name ---------------------------------------------------------------
    ("name_blank", _set('name="   "'), {}, ["name = '   '", "non-empty"]),
    ("name_padded", _set('name=" a"'), {}, ["name = ' a'", "whitespace"]),
    ("name_trailing", _set('name="a\t"'), {}, ["name = 'a\\t'"]),
    # --- 5: numbers that underflow or collide in the training dtype -------------------
    ("lr_underflows", _set("train.lr=1e-46"), {}, ["train.lr = 1e-46: 1e-46 underflows"]),
    (
        "weight_decay_underflows",
        _set("sweep.weight_decay=[0, 1e-50]"),
        {},
        ["sweep.weight_decay = [0.0, 1e-50]: 1e-50 underflows"],
    ),
    (
        "adam_eps_underflows",
        _set("train.optimizer=adam", "train.eps=1e-300"),
        {},
        ["train.eps = 1e-300", "float32"],
    ),
    (
        "weight_decay_collides",
        _set("sweep.weight_decay=[0.1, 0.1000000001]"),
        {},
        ["sweep.weight_decay = [0.1, 0.1000000001]: 0.1 and 0.1000000001 are the same number"],
    ),
    # --- 6: an axis or key that has no effect -----------------------------------------
    (
        "noise_std_axis_csv",
        _set("data.source=csv", "data.path=bvsim-data:diabetes.csv", "sweep.axis=noise_std")
        + _set("sweep.axis_values=[0.1, 0.2]"),
        {},
        ["sweep.axis = 'noise_std'", "data.source = 'csv'"],
    ),
    (
        "dropout_axis_linear",
        _set("model.kind=linear", "sweep.axis=dropout", "sweep.axis_values=[0, 0.2]"),
        {},
        ["sweep.axis = 'dropout'", "model.kind = 'linear'"],
    ),
    (
        "hidden_width_axis_no_hidden",
        _set("model.hidden=[]", "sweep.axis=hidden_width", "sweep.axis_values=[4, 8]"),
        {},
        ["sweep.axis = 'hidden_width'", "model.hidden = []"],
    ),
    (
        "dropout_axis_and_dropout",
        _set("model.dropout=0.1", "sweep.axis=dropout", "sweep.axis_values=[0, 0.2]"),
        {},
        ["model.dropout = 0.1", "sweep.axis = 'dropout'"],
    ),
    (
        "dropout_linear",
        _set("model.kind=linear", "model.dropout=0.5"),
        {},
        ["model.dropout = 0.5", "model.kind = 'linear'"],
    ),
    ("dropout_no_hidden", _set("model.dropout=0.5", "model.hidden=[]"), {}, ["model.hidden = []"]),
    # --- 7, 8: CSV files --------------------------------------------------------------
    (
        "csv_repeated_column",
        CSV,
        {"data.csv": "a,y,y\n" + "".join(f"{i},{i},{i}\n" for i in range(40))},
        ["data.path", "the header repeats column name(s) 'y'"],
    ),
    (  # a byte-order mark: the header check read '\ufeffy' and let the repeat through
        "csv_repeated_column_after_a_bom",
        CSV,
        {"data.csv": "\ufeffy,b,y\n" + "".join(f"{i},{i},{i}\n" for i in range(40))},
        ["data.path", "the header repeats column name(s) 'y'"],
    ),
    (
        "csv_huge_integer",
        CSV,
        {  # integers: pandas keeps the column as Python ints, and converting overflowed
            "data.csv": "a,b,y\n"
            + "".join(f"{'1' + '0' * 400 if i == 2 else i},{i % 7},{i}\n" for i in range(40))
        },
        ["data.path", "column 'a' has a value too large (line 4: 100000000000..."],
    ),
    (
        "csv_ragged",
        CSV,
        {"data.csv": _csv().replace("\n", ",7\n", 6).replace(",7\n", "\n", 5)},
        ["data.path", "not a readable CSV file (Error tokenizing data"],
    ),
    # --- 10: wording ---------------------------------------------------------------------
    ("set_a_section", _set("sweep=5"), {}, ["--set sweep: [sweep] is a section", "sweep.KEY="]),
    (
        "device_and_devices",
        ["--devices", "cpu", "--device", "cuda"],
        {},
        ["--device cuda and --devices cpu: give one of them"],
    ),
    # --- 3: a joblib backend that cannot hand back results as they finish ---------------
    (
        "backend_multiprocessing",
        ["--backend", "multiprocessing"],
        {},
        ["--backend multiprocessing: cannot stream", "usable: loky"],
    ),
]


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.parametrize("case_id, args, files, needles", REVIEW, ids=[c[0] for c in REVIEW])
def test_review_input_is_one_line_before_compute(
    case_id, args, files, needles, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    argv = ["sweep", "--preset", "smoke", *TINY, "--n-jobs", "1", "--no-figures"]
    argv += [a.format(tmp=tmp_path) for a in args]
    before = _tree(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("bvsim: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    assert _tree(tmp_path) == before  # no results/, no chunks/


@pytest.mark.parametrize("assignment", ["sweep.target_se=1e300", "train.diverge_threshold=1e39"])
def test_keys_outside_training_take_any_finite_value(assignment):
    """Neither enters float32 training: not refused as unrepresentable there."""
    from bvsim import load_config

    load_config(preset="smoke", overrides=[assignment, "sweep.n_reps=40"])


# --- 8: crashes before compute, now one-line errors -----------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_config_file_not_utf8(tmp_path, capsys, encoding):
    path = tmp_path / "my.toml"
    path.write_bytes("[sweep]\nn_reps = 4\n".encode(encoding))
    if encoding == "utf-16-be":
        path.write_bytes(b"\xfe\xff" + path.read_bytes())
    assert main(["sweep", str(path), "--preset", "smoke", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: not UTF-8 text" in err and "UTF-16" in err
    assert not (tmp_path / "o").exists()


def test_config_file_with_utf8_bom_loads(tmp_path):
    from bvsim import load_config

    path = tmp_path / "my.toml"
    path.write_bytes(b"\xef\xbb\xbf[sweep]\nn_reps = 4\n")
    assert load_config(path, preset="smoke").sweep.n_reps == 4


@pytest.mark.parametrize("overrides", ["sweep.n_reps=4", b"sweep.n_reps=4", [4]])
def test_overrides_must_be_a_list_of_strings(overrides):
    from bvsim import load_config

    with pytest.raises(TypeError, match="expected a list of 'KEY=VALUE' strings"):
        load_config(preset="smoke", overrides=overrides)


def test_overrides_as_a_mapping_and_a_preset_as_a_path_say_what_to_write():
    from bvsim import ConfigError, load_config

    with pytest.raises(TypeError, match="a mapping; give a list of 'KEY=VALUE' strings"):
        load_config(preset="smoke", overrides={"sweep.n_reps": 4})
    with pytest.raises(ConfigError, match="for the preset, write preset='smoke'"):
        load_config("smoke")


def test_overrides_may_be_any_iterable():
    from bvsim import load_config

    assert load_config(preset="smoke", overrides=iter(["sweep.n_reps=4"])).sweep.n_reps == 4


@pytest.mark.parametrize("sub", ["", "below"])
def test_run_sweep_out_is_a_file(tmp_path, sub):
    from bvsim import ConfigError, load_config, run_sweep

    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / sub if sub else tmp_path / "file"
    cfg = load_config(preset="smoke", overrides=TINY[1::2])
    with pytest.raises(ConfigError, match=f"out = {out}: "):
        run_sweep(cfg, out)


@pytest.mark.parametrize("content", ["[1, 2]", '"run"', "3"])
def test_report_of_run_json_that_is_not_an_object(tmp_path, capsys, content):
    out = tmp_path / "run"
    argv = ["sweep", "--preset", "smoke", *TINY, "--n-jobs", "1", "--no-figures"]
    assert main([*argv, "--out", str(out)]) == 0
    (out / "run.json").write_text(content)
    capsys.readouterr()
    assert main(["report", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run.json: not a run record (a JSON object)" in err


# --- 10: wording ------------------------------------------------------------------------


def test_unknown_key_in_a_file_names_the_dotted_key(tmp_path):
    from bvsim import ConfigError, load_config

    path = tmp_path / "x.toml"
    path.write_text("[sweep]\nextra = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: unknown key sweep.extra; allowed in [sweep]: ")


@pytest.mark.parametrize(
    "assignment, name",
    [("name=123", "123"), ("name=1e5", "1e5"), ("name=true", "true"), ('name="007"', "007")],
)
def test_set_of_a_string_key_takes_an_unquoted_number_as_text(assignment, name):
    from bvsim import load_config

    assert load_config(preset="smoke", overrides=[assignment]).name == name


def test_set_of_a_string_key_in_a_section_takes_its_text():
    from bvsim.config import load_config  # the keys only: the CSV file is not read

    over = ["data.source=csv", "data.path=data.csv", "data.target=2020", "sweep.n_reps=4"]
    cfg = load_config(preset="smoke", overrides=over)
    assert cfg.data.target == "2020" and cfg.sweep.n_reps == 4


def test_complex_truth_is_refused(tmp_path):
    from bvsim import ConfigError, load_config

    (tmp_path / "t.py").write_text("def f(x):\n    return x[:, 0] + 1j\n")
    with pytest.raises(ConfigError, match=r"data.truth = .*: returned non-real values \(dtype"):
        load_config(preset="smoke", overrides=[f'data.truth="{tmp_path}/t.py:f"'])


def test_a_truth_with_noise_inside_is_refused(tmp_path):
    """A truth drawing random numbers would fold noise into bias² and variance: two
    calls on the same probe points must agree (a fixed function of x passes)."""
    from bvsim import ConfigError, load_config

    (tmp_path / "t.py").write_text(
        "import numpy as np\n"
        "def noisy(x):\n    return np.sin(x[:, 0]) + np.random.normal(0, 0.1, len(x))\n"
        "def fixed(x):\n    return np.sin(x[:, 0])\n"
    )
    with pytest.raises(ConfigError, match=r"returned other values for the same x on a second"):
        load_config(preset="smoke", overrides=[f'data.truth="{tmp_path}/t.py:noisy"'])
    cfg = load_config(preset="smoke", overrides=[f'data.truth="{tmp_path}/t.py:fixed"'])
    assert cfg.data.truth.endswith("t.py:fixed")
