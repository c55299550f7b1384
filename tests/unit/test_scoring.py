"""Known-answer tests of the statistics and the scoring rules (harness/stats.py,
harness/scoring.py): orientation, interval coverage on seeded simulations, the best-of-K
null, verdict and SLO rules on hand-built samples, and the measurement order against a
steady drift."""

import numpy as np
import pytest
from scipy import stats as st

from harness import scoring
from harness.stats import best_of_k_null, median_ci, paired_compare


# -- orientation --------------------------------------------------------------------------------
@pytest.mark.parametrize("direction,b,t,want", [
    ("lower", [2.0, 2.0, 2.0], [1.0, 1.0, 1.0], 2.0),     # half the time: 2x better
    ("lower", [1.0, 1.0, 1.0], [2.0, 2.0, 2.0], 0.5),     # twice the time: 2x worse
    ("higher", [100.0] * 4, [125.0] * 4, 1.25),            # 25 % more throughput
    ("higher", [100.0] * 4, [80.0] * 4, 0.8),
])
def test_orientation_known_ratios(direction, b, t, want):
    r = paired_compare(b, t, direction)
    assert r["ratio"] == pytest.approx(want)
    assert r["ci95"] == pytest.approx([want, want])  # no spread: a zero-width interval
    assert r["n"] == len(b)


def test_known_ratio_with_noise_is_recovered():
    rng = np.random.default_rng(1)
    b = 10 * np.exp(rng.normal(0, 0.03, 40))
    t = 10 / 1.2 * np.exp(rng.normal(0, 0.03, 40))  # lower is better: a true 1.2x
    r = paired_compare(list(b), list(t), "lower")
    lo, hi = r["ci95"]
    assert lo < 1.2 < hi and r["ratio"] == pytest.approx(1.2, rel=0.02)
    assert r["p_value"] < 1e-6


def test_paired_needs_pairs_and_positive_values():
    with pytest.raises(ValueError):
        paired_compare([1.0, 2.0], [1.0], "lower")
    with pytest.raises(ValueError):
        paired_compare([1.0, 0.0], [1.0, 1.0], "lower")
    assert paired_compare([], [], "lower")["ratio"] is None
    one = paired_compare([2.0], [1.0], "lower")
    assert one["ratio"] == 2.0 and one["ci95"] is None


# -- coverage ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n,cv", [(5, 0.05), (8, 0.12)])
def test_null_interval_excludes_one_at_its_nominal_rate(n, cv):
    """No real difference, log-normal noise: a 95 % CI must exclude 1.0 about 5 % of the
    time (binomial 99.9 % band around 5 % over 4000 simulations: 3.7-6.5 %)."""
    rng = np.random.default_rng(7)
    sims, miss = 4000, 0
    for _ in range(sims):
        b = np.exp(rng.normal(0, cv, n))
        t = np.exp(rng.normal(0, cv, n))
        lo, hi = paired_compare(list(b), list(t), "lower")["ci95"]
        miss += not lo <= 1.0 <= hi
    assert 0.037 <= miss / sims <= 0.065, miss / sims


def test_median_ci_contains_the_median_most_of_the_time():
    rng = np.random.default_rng(3)
    hits = sum(lo <= 1.0 <= hi for lo, hi in (median_ci(list(np.exp(rng.normal(0, 0.05, 9))), n_boot=800, seed=i)
                                              for i in range(300)))
    assert hits / 300 >= 0.88  # percentile bootstrap of a median at n=9: slightly under 95 %


# -- the best-of-K null ------------------------------------------------------------------------
@pytest.mark.parametrize("k,n,sigma", [(1, 5, 0.05), (3, 5, 0.05), (3, 5, 0.137), (5, 8, 0.03)])
def test_best_of_k_null_matches_the_closed_form(k, n, sigma):
    """One null attempt's log ratio is N(0, 2 sigma^2 / n); the best of k reaches the 95th
    percentile of a max of k such normals: z with Phi(z) = 0.95 ** (1 / k)."""
    pool = list(np.exp(np.random.default_rng(11).normal(0, sigma, 20000)))
    got = best_of_k_null(pool, n=n, k=k, sims=20000, seed=5)
    z = st.norm.ppf(0.95 ** (1 / k))
    want = float(np.exp(z * sigma * np.sqrt(2 / n)))
    assert np.log(got) == pytest.approx(np.log(want), rel=0.06)


def test_best_of_three_null_exceeds_one_clearly_at_redis_noise():
    # the numbers: 5 runs a side, CV 13.7 %: luck alone reaches well above 1.1x
    pool = list(np.exp(np.random.default_rng(2).normal(0, 0.137, 5000)))
    assert best_of_k_null(pool, n=5, k=3) > 1.15
    assert best_of_k_null([1.0], n=5, k=3) is None


# -- verdicts -----------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio,ci,n,want", [
    (1.10, [1.05, 1.15], 5, "improved"),
    (1.02, [1.01, 1.03], 5, "no_change"),       # clear of 1 but inside the 3 % band
    (0.90, [0.85, 0.95], 5, "regressed"),
    (1.00, [0.98, 1.02], 5, "no_change"),
    (1.05, [0.99, 1.11], 5, "inconclusive"),    # straddles 1
    (1.02, [1.005, 1.045], 5, "inconclusive"),  # above 1, ratio inside the band, CI leaves it
    (1.10, None, 1, "inconclusive"),
    (None, None, 0, ""),
])
def test_verdict_rules(ratio, ci, n, want):
    v = scoring.verdict(ratio, ci, n)
    assert v["verdict"] == want, v
    assert v["indicative"] == (n < scoring.MIN_RUNS)


def test_verdict_from_hand_built_samples():
    b = [3.0, 3.1, 2.9, 3.0, 3.05]
    assert scoring.verdict(**_v(paired_compare(b, [x / 1.25 for x in b], "lower")))["verdict"] == "improved"
    t = [3.02, 3.05, 2.93, 2.98, 3.04]
    assert scoring.verdict(**_v(paired_compare(b, t, "lower")))["verdict"] == "no_change"
    t = [2.5, 3.6, 2.6, 3.5, 3.0]
    assert scoring.verdict(**_v(paired_compare(b, t, "lower")))["verdict"] == "inconclusive"


def _v(c):
    return {"ratio": c["ratio"], "ci": c["ci95"], "n": c["n"]}


@pytest.mark.parametrize("direction,absolute,relative,ci,tci,want", [
    ("lower", None, 0.9, [1.15, 1.25], None, "met"),          # needs 1/0.9 = 1.111x
    ("lower", None, 0.9, [1.05, 1.20], None, "inconclusive"),  # median may meet it, the bound does not
    ("lower", None, 0.9, [0.95, 1.10], None, "not_met"),
    ("higher", None, 1.05, [1.06, 1.09], None, "met"),
    ("higher", None, 1.05, [1.00, 1.04], None, "not_met"),
    ("lower", 100.0, None, None, [80.0, 95.0], "met"),
    ("lower", 100.0, None, None, [90.0, 105.0], "inconclusive"),
    ("lower", 100.0, None, None, [101.0, 110.0], "not_met"),
    ("higher", 50.0, 1.05, [1.06, 1.1], [40.0, 45.0], "not_met"),
    ("higher", 50.0, 1.05, [1.06, 1.1], [55.0, 60.0], "met"),
])
def test_slo_verdict_uses_the_least_favourable_bound(direction, absolute, relative, ci, tci, want):
    assert scoring.slo_verdict(direction, absolute, relative, ci, tci)["verdict"] == want


def test_within_noise():
    assert scoring.within_noise(1.04, 1.06) is True
    assert scoring.within_noise(1.10, 1.06) is False
    assert scoring.within_noise(None, 1.06) is None


# -- order ----------------------------------------------------------------------------------------
def test_balanced_order_blocks():
    o = scoring.balanced_order(12, seed=4)
    assert o == scoring.balanced_order(12, seed=4)  # seeded
    assert o.count("BT") == o.count("TB") == 6
    for i in range(0, 12, 4):
        a, b, c, d = o[i:i + 4]
        assert a == d and b == c and a != b  # BT TB TB BT or TB BT BT TB
    assert {tuple(scoring.balanced_order(4, s)) for s in range(20)} == {("BT", "TB", "TB", "BT"),
                                                                       ("TB", "BT", "BT", "TB")}


def _drifting_trial(order: list[str], slope: float = 0.01) -> dict:
    """Both sides run the same program; its result grows steadily run after run (a host
    that slows down, a guest that fills up): value = 100 * (1 + slope * k) for the k-th run."""
    runs = {"B": [], "T": []}
    k = 0
    for pair in order:
        for side in pair:
            runs[side].append(100 * (1 + slope * k))
            k += 1
    return paired_compare(runs["B"], runs["T"], "lower")


def test_drift_balanced_order_is_one_fixed_order_is_biased():
    """The reason for the balanced order: with the old fixed order (B then T in every
    round) a steady drift makes a do-nothing agent look worse with a tight interval; in
    balanced blocks it comes out at 1.00x within its CI."""
    fixed = _drifting_trial(["BT"] * 8)
    lo, hi = fixed["ci95"]
    assert hi < 1.0 and fixed["ratio"] < 0.995  # biased, and confidently so
    balanced = _drifting_trial(scoring.balanced_order(8, seed=1))
    lo, hi = balanced["ci95"]
    assert lo <= 1.0 <= hi and balanced["ratio"] == pytest.approx(1.0, abs=0.002)
