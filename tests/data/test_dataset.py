"""The user's own data: a CSV, a fixed test split, three resampling modes, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bvsim import ConfigError, load_config, run_sweep
from bvsim.data.csv import load_split
from bvsim.data.generator import draw_training_sets, make_test_set


@pytest.fixture
def csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 2))
    df = pd.DataFrame(
        {"a": x[:, 0], "b": x[:, 1], "y": x[:, 0] - 2 * x[:, 1] + rng.normal(size=60)}
    )
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path


def _cfg(path, *extra):
    over = ["data.source=csv", f"data.path={path}", "data.target=y", "data.n_train=20",
            "model.hidden=[8]", "train.steps=40", "sweep.n_reps=5", *extra]  # fmt: skip
    return load_config(preset="smoke", overrides=over)


def test_split_and_resampling_modes(csv):
    cfg = _cfg(csv)
    assert cfg.data.dim == 2 and cfg.data.features == ["a", "b"]
    x_pool, y_pool, x_test, y_test = load_split(cfg)
    assert len(y_test) == 15 and len(y_pool) == 45  # test_fraction 0.25 of 60
    assert abs(y_pool.mean()) < 1e-12 and y_pool.std() == pytest.approx(1.0)  # standardized
    test = make_test_set(cfg)
    np.testing.assert_array_equal(test.f, y_test)
    assert np.isnan(test.noise_var)

    def rows(mode, n_reps=5, n=20):
        c = _cfg(csv, f"data.resample={mode}", f"sweep.n_reps={n_reps}", f"data.n_train={n}")
        sets = draw_training_sets(c, make_test_set(c), range(n_reps))
        # recover pool row numbers from the (unique) standardized feature vectors
        index = {tuple(v): i for i, v in enumerate(x_pool)}
        return [[index[tuple(v)] for v in s] for s in sets.x]

    boot = rows("bootstrap")
    assert all(len(r) == 20 for r in boot)
    assert any(len(set(r)) < 20 for r in boot)  # with replacement: repeats
    sub = rows("subsample")
    assert all(len(set(r)) == 20 for r in sub)  # without replacement
    dis = rows("disjoint", n_reps=4, n=11)
    flat = [i for r in dis for i in r]
    assert len(flat) == len(set(flat)) == 44  # disjoint parts


def test_unknown_noise_is_reported_not_folded_silently(csv, tmp_path):
    result = run_sweep(_cfg(csv), tmp_path / "run", progress=False)
    s = result.summary
    assert s["bias2_includes_noise"].all() and s["noise"].isna().all()
    np.testing.assert_allclose(s["expected_error"], s["bias2"] + s["variance"], rtol=1e-12)
    np.testing.assert_allclose(s["test_error"], s["expected_error"], rtol=1e-9)
    assert "bias² + noise" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["data.target=nope"], "no such column"),
        (["data.features=['a', 'zz']"], "no column 'zz'"),
        (["data.resample=subsample", "data.n_train=50"], "at most the 45 training rows"),
        (["data.resample=disjoint", "sweep.n_reps=5", "data.n_train=10"], "need 50 rows"),
        (["data.test_fraction=1.0"], "must be in (0, 1)"),
        (["data.features=['a', 'y']"], "includes the target"),
    ],
)
def test_bad_csv_settings(csv, extra, needle):
    with pytest.raises(ConfigError) as info:
        _cfg(csv, *extra)
    assert needle in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        _cfg(tmp_path / "missing.csv")
    text = tmp_path / "text.csv"
    text.write_text("a,y\n1,2\n3,x\n5,6\n")
    with pytest.raises(ConfigError, match=r"column 'y' is not numeric \(line 3: 'x'\)") as info:
        _cfg(text)
    assert "it is data.target: for class labels set data.task = 'classification'" in str(info.value)
    feature = tmp_path / "feature.csv"
    feature.write_text("site,a,y\nA,1,2\nB,3,4\nA,5,6\n")
    with pytest.raises(ConfigError, match="column 'site' is not numeric") as info:
        _cfg(feature)
    assert "leave it out of the features with data.features" in str(info.value)
    gap = tmp_path / "gap.csv"
    gap.write_text("a,y\n1,2\n3,4\n,6\n")
    with pytest.raises(ConfigError, match=r"column 'a' has a missing value \(line 4\)"):
        _cfg(gap)
    with pytest.raises(ConfigError, match="needs data.path"):
        load_config(preset="smoke", overrides=["data.source=csv"])


def test_diabetes_preset_loads():
    cfg = load_config(preset="diabetes")
    assert cfg.data.dim == 10 and cfg.data.target == "target"
    x_pool, y_pool, x_test, y_test = load_split(cfg)
    assert len(y_pool) + len(y_test) == 442


def test_csv_classification_with_string_labels(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 2))
    label = np.where(x[:, 0] + 0.5 * rng.normal(size=80) > 0, "yes", "no")
    path = tmp_path / "cls.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": label}).to_csv(path, index=False)
    over = ["data.source=csv", "data.task=classification", f"data.path={path}",
            "data.target=label", "data.n_train=40", "model.hidden=[8]", "train.steps=60",
            "sweep.n_reps=5", "sweep.n_seeds=1"]  # fmt: skip
    cfg = load_config(preset="smoke", overrides=over)
    assert cfg.data.n_classes == 2 and cfg.data.dim == 2
    result = run_sweep(cfg, progress=False)
    s = result.summary
    assert result.tables.meta["class_labels"] == ["no", "yes"]  # class c: sorted labels
    assert (s["loss"] == "cross_entropy").all() and s["bias2_includes_noise"].all()
    assert s["noise"].isna().all()
    np.testing.assert_allclose(s["expected_error"], s["bias2"] + s["variance"], atol=1e-10)
    np.testing.assert_allclose(s["test_error"], s["expected_error"], rtol=1e-6)


def test_wine_preset_loads():
    cfg = load_config(preset="wine")
    assert cfg.data.n_classes == 3 and cfg.data.dim == 13


def test_noise_estimated_from_repeated_x(tmp_path):
    rng = np.random.default_rng(2)
    x = np.repeat(np.arange(30.0), 4)  # every x four times
    y = 0.1 * x + rng.normal(scale=2.0, size=len(x))
    path = tmp_path / "rep.csv"
    pd.DataFrame({"x": x, "y": y}).to_csv(path, index=False)
    over = ["data.source=csv", f"data.path={path}", "data.standardize=false",
            "data.n_train=40", "model.kind=linear", "train.steps=50", "sweep.n_reps=4"]  # fmt: skip
    s = run_sweep(load_config(preset="smoke", overrides=over), progress=False).summary
    assert s["noise_estimate"].iloc[0] == pytest.approx(4.0, rel=0.25)  # sigma = 2
    # 30 groups of 4: df 90, so about 4 * sqrt(2 / 90) = 0.6 under normal noise
    assert 0.35 < s["noise_estimate_se"].iloc[0] < 0.9


def test_a_saved_index_is_refused_unless_listed(tmp_path):
    """pandas' to_csv() saves its index as a first column without a name ('Unnamed: 0'):
    never a feature by default; a user who lists it in data.features gets it."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    path = tmp_path / "indexed.csv"
    df.assign(y=df["a"] - df["b"]).to_csv(path)  # with its index
    with pytest.raises(ConfigError, match=r"'Unnamed: 0'.*looks like a saved index"):
        _cfg(path)
    assert _cfg(path, "data.features=['a', 'b']").data.dim == 2
    cfg = _cfg(path, "data.features=['Unnamed: 0', 'a', 'b']")
    assert cfg.data.features == ["Unnamed: 0", "a", "b"] and cfg.data.dim == 3


def test_a_feature_listed_twice_is_refused(csv):
    with pytest.raises(ConfigError, match=r"data.features = \['a', 'a'\].*'a' more than once"):
        _cfg(csv, "data.features=['a', 'a']")


def test_a_dim_or_class_count_the_file_contradicts_is_refused(csv, tmp_path):
    """data.dim and data.n_classes are read from the file: a number given that the file
    contradicts was replaced silently; the file's own number (as a saved config.toml
    records it) is accepted."""
    with pytest.raises(ConfigError, match=r"data.dim = 5: .* gives 2 features; leave data.dim"):
        _cfg(csv, "data.dim=5")
    assert _cfg(csv, "data.dim=2").data.dim == 2
    df = pd.read_csv(csv).assign(y=lambda f: (f["a"] > 0).astype(int) + (f["b"] > 1))
    three = tmp_path / "classes.csv"
    df.to_csv(three, index=False)
    over = ["data.task=classification", "data.n_classes=4"]
    with pytest.raises(ConfigError, match=r"data.n_classes = 4: .* gives 3 classes in column 'y'"):
        _cfg(three, *over)
    assert _cfg(three, "data.task=classification").data.n_classes == 3


@pytest.mark.parametrize("name", ["d.csv.gz", "d.csv.tar.gz", "d.tar", "d.csv.zip", "d.csv.bz2"])
def test_a_compressed_csv_is_read_as_pandas_reads_it(tmp_path, name):
    """The bytes are read once (for their digest) and parsed from memory: the
    compression is pandas' own inference from the file name (a .tar.gz was parsed as
    gzip, its tar header as CSV text)."""
    from bvsim.data.csv import _read

    df = pd.DataFrame({"x": np.arange(6.0), "y": np.arange(6.0) ** 2})
    df.to_csv(tmp_path / name, index=False)
    _, frame = _read(str(tmp_path / name))
    pd.testing.assert_frame_equal(frame, pd.read_csv(tmp_path / name))
    pd.testing.assert_frame_equal(frame, df)


def test_a_file_named_gz_that_is_not_gzip_is_a_one_line_error(tmp_path):
    fake = tmp_path / "data.csv.gz"
    fake.write_text("a,y\n1,2\n3,4\n")
    with pytest.raises(ConfigError, match=r"data.path = .*data.csv.gz': cannot be read \("):
        _cfg(fake)
