"""Classification decompositions: exact identities, known answers and error bars."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bvsim.estimate.classification import decompose_brier, decompose_cross_entropy
from bvsim.estimate.squared import decompose, jackknife_se
from bvsim.estimate.zero_one import decompose_zero_one


def _dirichlet(rng, shape, n_classes, conc=1.0):
    return rng.dirichlet(np.full(n_classes, conc), size=shape)


def _kl(p, q):
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / q), 0.0).sum(axis=-1)


def _entropy(p):
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=-1)


def _geo_mean(pi, axis):
    g = np.exp(np.log(pi).mean(axis=axis))
    return g / g.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------ cross-entropy


@pytest.mark.parametrize(("s", "c"), [(1, 2), (3, 3), (2, 5)])
def test_ce_identity_against_direct_member_average(s, c):
    rng = np.random.default_rng(0)
    k, j = 7, 6
    proba = _dirichlet(rng, (k, s, j), c)
    p = _dirichlet(rng, j, c)
    overall, point = decompose_cross_entropy(proba, p)

    ce = -(p * np.log(proba)).sum(axis=-1).mean(axis=(0, 1))  # mean_{k,s} CE(p, pi_ks)
    pibar = _geo_mean(proba, axis=(0, 1))
    np.testing.assert_allclose(point["mean_distribution"], pibar, rtol=1e-12)
    np.testing.assert_allclose(point["expected_loss"], ce, rtol=0, atol=1e-12)
    np.testing.assert_allclose(point["noise"], _entropy(p), rtol=0, atol=1e-12)
    np.testing.assert_allclose(point["bias"], _kl(p, pibar), rtol=0, atol=1e-12)
    var = _kl(pibar, proba).mean(axis=(0, 1))  # mean_{k,s} KL(pibar || pi_ks)
    np.testing.assert_allclose(point["variance"], var, rtol=0, atol=1e-12)
    total = point["noise"] + point["bias"] + point["variance"]
    np.testing.assert_allclose(total, ce, rtol=0, atol=1e-12)
    assert overall["noise"] + overall["bias"] + overall["variance"] == pytest.approx(
        ce.mean(), abs=1e-12
    )
    # seed split: variance_data = mean_k KL(pibar || pibar_k), init = rest
    if s == 1:
        assert np.isnan(overall["variance_init"])
        assert overall["variance_data"] == pytest.approx(overall["variance"], abs=1e-12)
    else:
        pibar_k = _geo_mean(proba, axis=1)
        data = _kl(pibar, pibar_k).mean(axis=0)
        init = _kl(pibar_k[:, None], proba).mean(axis=(0, 1))
        np.testing.assert_allclose(point["variance_data"], data, rtol=0, atol=1e-12)
        np.testing.assert_allclose(point["variance_init"], init, rtol=0, atol=1e-12)


@pytest.mark.parametrize("s", [1, 3])
def test_ce_corrected_terms_keep_the_identity(s):
    rng = np.random.default_rng(1)
    proba = _dirichlet(rng, (9, s, 5), 4, conc=0.7)
    p = _dirichlet(rng, 5, 4)
    plug, _ = decompose_cross_entropy(proba, p)
    corr, point = decompose_cross_entropy(proba, p, corrected=True)
    total = point["noise"] + point["bias"] + point["variance"]
    np.testing.assert_allclose(total, point["expected_loss"], rtol=0, atol=1e-12)
    assert corr["expected_loss"] == pytest.approx(plug["expected_loss"], abs=1e-12)
    assert corr["variance"] > plug["variance"]  # plug-in variance is biased low
    assert corr["bias"] < plug["bias"]  # and plug-in bias high
    if s > 1:
        assert corr["variance_data"] + corr["variance_init"] == pytest.approx(
            corr["variance"], abs=1e-12
        )
        assert corr["variance_init"] > plug["variance_init"]


def test_ce_members_predict_truth():
    rng = np.random.default_rng(2)
    p = _dirichlet(rng, 4, 3)
    proba = np.broadcast_to(p, (5, 2, 4, 3))
    overall, point = decompose_cross_entropy(proba, p)
    assert overall["bias"] == pytest.approx(0, abs=1e-14)
    assert overall["variance"] == pytest.approx(0, abs=1e-14)
    np.testing.assert_allclose(point["expected_loss"], _entropy(p), rtol=1e-13)
    assert overall["variance_se"] == pytest.approx(0, abs=1e-14)


def test_ce_members_agree_on_wrong_distribution():
    rng = np.random.default_rng(3)
    p = _dirichlet(rng, 6, 4)
    q = _dirichlet(rng, 6, 4)
    overall, point = decompose_cross_entropy(np.broadcast_to(q, (4, 3, 6, 4)), p)
    np.testing.assert_allclose(point["variance"], 0, atol=1e-14)
    np.testing.assert_allclose(point["bias"], _kl(p, q), rtol=1e-12)
    assert overall["bias_se"] == pytest.approx(0, abs=1e-12)


def test_ce_clipping_handles_zeros():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    proba = np.broadcast_to(p, (3, 1, 2, 2)).copy()
    overall, point = decompose_cross_entropy(proba, p)
    assert np.all(np.isfinite(point["expected_loss"]))
    np.testing.assert_allclose(point["expected_loss"], [0.0, np.log(2)], atol=1e-10)
    assert overall["variance"] == pytest.approx(0, abs=1e-14)


def test_ce_without_truth_and_with_observed_labels():
    rng = np.random.default_rng(4)
    proba = _dirichlet(rng, (6, 2, 5), 3)
    no, _ = decompose_cross_entropy(proba, None)
    assert np.isnan(no["bias"]) and np.isnan(no["expected_loss"]) and np.isfinite(no["variance"])
    labels = rng.integers(0, 3, size=5)
    o, point = decompose_cross_entropy(proba, np.eye(3)[labels])
    assert o["noise"] == 0 and o["variance"] == pytest.approx(no["variance"], abs=1e-14)
    logloss = -np.log(proba[..., np.arange(5), labels]).mean(axis=(0, 1))
    np.testing.assert_allclose(point["expected_loss"], logloss, rtol=1e-12)


def test_ce_jackknife_correction_removes_finite_k_bias():
    """Members drawn (by training set) from a finite population whose components are
    known exactly: the corrected estimates average to them, the plug-in ones do not,
    and the jackknife SEs match the spread of the estimates."""
    rng = np.random.default_rng(5)
    n_pop, j, c, k = 400, 3, 3, 6
    logits = rng.normal(size=(n_pop, j, c)) * np.array([1.5, 1.0, 0.5])[:, None]
    pop = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)  # (pop, J, C)
    p = _dirichlet(rng, j, c)
    pibar = _geo_mean(pop, axis=0)
    true_var = _kl(pibar, pop).mean(axis=0).mean()
    true_bias = _kl(p, pibar).mean()
    plug, corr, ses = [], [], []
    for _ in range(1500):
        proba = pop[rng.integers(0, n_pop, size=k)][:, None]
        o, _ = decompose_cross_entropy(proba, p, corrected=True)
        q, _ = decompose_cross_entropy(proba, p)
        corr.append([o["bias"], o["variance"]])
        plug.append([q["bias"], q["variance"]])
        ses.append([o["bias_se"], o["variance_se"]])
    corr, plug, ses = np.array(corr), np.array(plug), np.array(ses)
    err = corr.std(axis=0) / np.sqrt(len(corr))
    truth = np.array([true_bias, true_var])
    plug_off = np.abs(plug.mean(axis=0) - truth)
    corr_off = np.abs(corr.mean(axis=0) - truth)
    assert np.all(plug_off > 8 * err), (plug_off, err)  # plug-in: O(1/K) off, resolvable
    assert np.all(corr_off < 4 * err), (corr_off, err)  # corrected: O(1/K^2), unresolved
    ratio = ses.mean(axis=0) / corr.std(axis=0)
    assert np.all((ratio > 0.75) & (ratio < 1.4)), ratio


def test_ce_se_shrinks_like_one_over_sqrt_k():
    rng = np.random.default_rng(6)
    se = {}
    for k in (40, 640):
        proba = _dirichlet(rng, (k, 1, 40), 3, conc=2.0)
        o, _ = decompose_cross_entropy(proba, np.tile([0.6, 0.3, 0.1], (40, 1)))
        se[k] = o["variance_se"], o["bias_se"]
    ratio = np.array(se[40]) / np.array(se[640])
    np.testing.assert_allclose(ratio, 4.0, rtol=0.25)


@pytest.mark.parametrize("s", [2, 4])
def test_ce_corrected_init_variance_se_is_that_of_the_corrected_values(s):
    """The statistics review: with 2 seeds the delete-one-seed correction doubles each
    set's init variance, so its SE doubles too; the plug-in's jackknife SE was printed
    beside the corrected value (half the true spread over studies). Checked two ways:
    against the SE of the corrected per-set values written from the definition
    (mean_s KL(pibar_k || pi_ks), jackknifed over the seeds), and against the spread
    of the corrected value over 300 simulated studies."""
    rng = np.random.default_rng(11)
    k, j = 30, 5
    p = np.tile([0.5, 0.3, 0.2], (j, 1))

    def study():
        centre = _dirichlet(rng, (k, 1, j), 3, conc=8.0)  # a set's own distribution
        return np.stack([rng.dirichlet(40 * centre[i, 0, t]) for i in range(k)
                         for _ in range(s) for t in range(j)]).reshape(k, s, j, 3)  # fmt: skip

    proba = study()
    o, _ = decompose_cross_entropy(proba, p, corrected=True)

    def init(pi):  # (S, J, C) -> (J,): mean_s KL(pibar || pi_s)
        g = _geo_mean(pi, axis=0)
        return _kl(g[None], pi).mean(axis=0)

    per_set = np.empty((k, j))
    for i in range(k):
        loo = np.stack([init(np.delete(proba[i], r, axis=0)) for r in range(s)])
        per_set[i] = s * init(proba[i]) - (s - 1) * loo.mean(axis=0)
    values = per_set.mean(axis=1)
    np.testing.assert_allclose(o["variance_init"], values.mean(), rtol=1e-9)
    np.testing.assert_allclose(o["variance_init_se"], values.std(ddof=1) / np.sqrt(k), rtol=1e-9)
    draws = [decompose_cross_entropy(study(), p, corrected=True)[0] for _ in range(300)]
    spread = np.std([d["variance_init"] for d in draws], ddof=1)
    reported = np.mean([d["variance_init_se"] for d in draws])
    assert 0.85 < spread / reported < 1.15


# ------------------------------------------------------------------------ 0-1 loss


def _labels(counts_per_point):
    """Members (k, s=1, j) with the given class counts at each test point."""
    cols = [np.repeat(np.arange(len(cnt)), cnt) for cnt in counts_per_point]
    return np.stack(cols, axis=1)[:, None, :]


def test_zero_one_two_class_worked_example():
    """Hand-worked two-class example (Domingos 2000, Theorem 2 form).

    Point 0: p = (0.8, 0.2), 6 of 10 members say 0: y* = y_m = 0, B = 0, N = 0.2,
    V = 0.4, c1 = 2(0.6) - 1 = 0.2, c2 = 1; E[L] = 0.6(0.2) + 0.4(0.8) = 0.44
    = 0.2(0.2) + 0 + 0.4.
    Point 1: p = (0.9, 0.1), 7 of 10 say 1: y* = 0, y_m = 1, B = 1, N = 0.1, V = 0.3,
    c1 = 2(0.3) - 1 = -0.4, c2 = -1; E[L] = 0.3(0.1) + 0.7(0.9) = 0.66
    = -0.4(0.1) + 1 - 0.3.
    """
    labels = _labels([[6, 4], [3, 7]])
    p = np.array([[0.8, 0.2], [0.9, 0.1]])
    overall, pt = decompose_zero_one(labels, p)
    np.testing.assert_allclose(pt["expected_loss"], [0.44, 0.66], atol=1e-14)
    np.testing.assert_allclose(pt["noise"], [0.2, 0.1], atol=1e-14)
    np.testing.assert_array_equal(pt["bias"], [0, 1])
    np.testing.assert_allclose(pt["variance"], [0.4, 0.3], atol=1e-14)
    np.testing.assert_allclose(pt["c1"], [0.2, -0.4], atol=1e-14)
    np.testing.assert_allclose(pt["c2"], [1, -1], atol=1e-14)
    np.testing.assert_allclose(pt["noise_term"], [0.04, -0.04], atol=1e-14)
    np.testing.assert_allclose(pt["variance_term"], [0.4, -0.3], atol=1e-14)
    assert overall["expected_loss"] == pytest.approx(0.55, abs=1e-14)
    assert overall["variance_unbiased"] == pytest.approx(0.2)
    assert overall["variance_biased"] == pytest.approx(0.15)
    assert overall["net_variance"] == pytest.approx(0.05)
    assert overall["net_variance"] == pytest.approx(overall["variance_term"], abs=1e-14)
    np.testing.assert_array_equal(pt["main_prediction"], [0, 1])
    np.testing.assert_array_equal(pt["optimal_prediction"], [0, 0])


def test_zero_one_three_class_worked_example():
    """p = (0.5, 0.3, 0.2), members q = (0.2, 0.5, 0.3): y* = 0, y_m = 1, B = 1,
    N = 0.5, V = 0.5, c2 = -0.2/0.5 = -0.4; c1 N = q0 - sum q p = 0.2 - 0.31 = -0.11
    (c1 = 0.2 - 0.8 * P(y = pred | y != y*, pred != y*) = 0.2 - 0.8 * (0.21/0.5)/0.8);
    E[L] = 1 - 0.31 = 0.69 = -0.11 + 1 - 0.2."""
    labels = _labels([[2, 5, 3]])
    p = np.array([[0.5, 0.3, 0.2]])
    _, pt = decompose_zero_one(labels, p)
    np.testing.assert_allclose(pt["expected_loss"], [0.69], atol=1e-14)
    np.testing.assert_allclose(pt["noise_term"], [-0.11], atol=1e-14)
    np.testing.assert_allclose(pt["c1"], [-0.22], atol=1e-14)
    np.testing.assert_allclose(pt["c2"], [-0.4], atol=1e-14)
    np.testing.assert_allclose(pt["variance_term"], [-0.2], atol=1e-14)
    assert pt["bias"][0] == 1


@st.composite
def _zero_one_case(draw):
    c = draw(st.sampled_from([2, 3]))
    k = draw(st.integers(2, 6))
    s = draw(st.integers(1, 3))
    j = draw(st.integers(1, 5))
    labels = draw(hnp.arrays(np.int64, (k, s, j), elements=st.integers(0, c - 1)))
    w = draw(
        hnp.arrays(
            np.float64,
            (j, c),
            elements=st.one_of(st.just(0.0), st.floats(1e-3, 1.0)),
        )
    )
    w[:, 0] += w.sum(axis=1) == 0  # at least one positive weight per row
    return labels, w / w.sum(axis=1, keepdims=True)


@settings(max_examples=150, deadline=None)
@given(_zero_one_case())
def test_zero_one_identity_holds_exactly(case):
    labels, p = case
    overall, pt = decompose_zero_one(labels, p)
    # expected loss straight from the members: mean_{k,s} (1 - p[pred])
    direct = (1 - p[np.arange(p.shape[0]), labels]).mean(axis=(0, 1))
    np.testing.assert_allclose(pt["expected_loss"], direct, rtol=0, atol=1e-12)
    total = pt["noise_term"] + pt["bias"] + pt["variance_term"]
    np.testing.assert_allclose(total, pt["expected_loss"], rtol=0, atol=1e-12)
    # the coefficients reproduce the terms
    np.testing.assert_allclose(pt["c1"] * pt["noise"], pt["noise_term"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(pt["c2"] * pt["variance"], pt["variance_term"], rtol=0, atol=1e-12)
    assert overall["noise_term"] + overall["bias"] + overall["variance_term"] == pytest.approx(
        overall["expected_loss"], abs=1e-12
    )
    # Domingos' variance from its definition
    main = pt["main_prediction"]
    np.testing.assert_allclose(pt["variance"], (labels != main).mean(axis=(0, 1)), atol=1e-14)
    if p.shape[1] == 2:  # two-class closed forms
        q_star = (labels == pt["optimal_prediction"]).mean(axis=(0, 1))
        np.testing.assert_allclose(pt["c1"], 2 * q_star - 1, atol=1e-12)
        np.testing.assert_allclose(pt["c2"], np.where(pt["bias"] == 1, -1.0, 1.0), atol=1e-12)
        assert overall["net_variance"] == pytest.approx(overall["variance_term"], abs=1e-12)


def test_zero_one_ties_go_to_the_smallest_label():
    labels = _labels([[3, 3, 0], [0, 3, 3]])
    p = np.array([[0.2, 0.4, 0.4], [0.4, 0.4, 0.2]])
    _, pt = decompose_zero_one(labels, p)
    np.testing.assert_array_equal(pt["main_prediction"], [0, 1])
    np.testing.assert_array_equal(pt["optimal_prediction"], [1, 0])


def test_zero_one_without_truth_and_se():
    rng = np.random.default_rng(7)
    se = {}
    for k in (40, 640):
        labels = (rng.random((k, 2, 50)) < 0.3).astype(int)
        o, pt = decompose_zero_one(labels, None, n_classes=2)
        assert np.isnan(o["bias"]) and np.isfinite(o["variance"])
        se[k] = o["variance_se"]
    assert se[40] / se[640] == pytest.approx(4.0, rel=0.25)
    p = np.tile([0.6, 0.4], (50, 1))
    o, _ = decompose_zero_one(labels, p)
    assert o["noise_se"] == 0 and o["expected_loss_se"] > 0


# --------------------------------------------------------------------------- Brier


@pytest.mark.parametrize("s", [1, 3])
def test_brier_identity_and_known_noise(s):
    rng = np.random.default_rng(8)
    k, j, c = 6, 5, 3
    proba = _dirichlet(rng, (k, s, j), c)
    p = _dirichlet(rng, j, c)
    overall, pt = decompose_brier(proba, p)
    # E_y ||pi - e_y||^2 = sum pi^2 - 2 sum p pi + 1, averaged over members
    direct = ((proba**2).sum(-1) - 2 * (p * proba).sum(-1) + 1).mean(axis=(0, 1))
    np.testing.assert_allclose(pt["expected_loss"], direct, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pt["noise"], (p * (1 - p)).sum(1), atol=1e-14)
    np.testing.assert_allclose(
        pt["noise"] + pt["bias2"] + pt["variance"], direct, rtol=0, atol=1e-12
    )
    # the overall SE is the jackknife of the class sum: C times that of the flat mean
    flat, _ = decompose(proba.reshape(k, s, j * c), p.reshape(-1))
    for name in ("bias2", "variance", "mse_truth"):
        assert overall[f"{name}_se"] == pytest.approx(c * flat[f"{name}_se"], rel=1e-10)
    assert np.isnan(overall["variance_init"]) == (s == 1)
    # per-point SEs: jackknife of class sums of decompose() on each leave-one-out set
    for name in ("bias2", "variance", "mse_truth"):
        loo = []
        for i in range(k):
            rest = np.delete(proba, i, axis=0).reshape(k - 1, s, j * c)
            loo.append(decompose(rest, p.reshape(-1))[1][name].reshape(j, c).sum(axis=1))
        np.testing.assert_allclose(pt[f"{name}_se"], jackknife_se(np.array(loo)), rtol=1e-10)


def test_brier_labels_and_agreeing_members():
    rng = np.random.default_rng(9)
    proba = _dirichlet(rng, (5, 2, 4), 3)
    labels = np.array([0, 2, 1, 1])
    a, _ = decompose_brier(proba, labels)
    b, _ = decompose_brier(proba, np.eye(3)[labels])
    assert a == pytest.approx(b, nan_ok=True) and a["noise"] == 0
    p = _dirichlet(rng, 4, 3)
    o, _ = decompose_brier(np.broadcast_to(p, (5, 2, 4, 3)), p)
    assert o["bias2"] == pytest.approx(0, abs=1e-14)
    assert o["variance"] == pytest.approx(0, abs=1e-14)
    assert o["expected_loss"] == pytest.approx((p * (1 - p)).sum(1).mean(), abs=1e-14)


def test_input_validation():
    rng = np.random.default_rng(10)
    proba = _dirichlet(rng, (3, 1, 2), 2)
    with pytest.raises(ValueError, match="sum to 1"):
        decompose_cross_entropy(proba, np.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="logits"):
        decompose_cross_entropy(proba * 3 - 1, None)
    with pytest.raises(ValueError, match="at least 2"):
        decompose_cross_entropy(proba[:1], None)
    with pytest.raises(ValueError, match="lie in"):
        decompose_zero_one(np.full((3, 1, 2), 2), np.full((2, 2), 0.5))
