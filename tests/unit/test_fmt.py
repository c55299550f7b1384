"""Known answers of harness/fmt.py: how every figure people read is written."""

import math

import pytest

from harness import fmt


@pytest.mark.parametrize("v,digits,kw,want", [
    (2.8529999999999998, 4, {}, "2.853"),
    (2.8529999999999998, 3, {}, "2.85"),
    (123456.0, 4, {}, "123500"),          # no exponent, ever
    (0.000123456, 3, {}, "0.000123"),
    (9.996, 3, {}, "10.0"),               # rounding that carries keeps 3 digits, not "10.00"
    (0.09996, 3, {}, "0.100"),
    (1.0, 3, {}, "1.00"),
    (1.0, 3, {"trim": True}, "1"),
    (10.50, 4, {"trim": True}, "10.5"),
    (-0.4741, 3, {}, "-0.474"),
    (0.0, 3, {}, "0.00"),
    (0.0, 4, {"trim": True}, "0"),
    (0.0004, 4, {"max_decimals": 3}, "0.000"),
    (-0.0004, 4, {"max_decimals": 3}, "0.000"),  # no "-0.000"
    (3.14159, 4, {"max_decimals": 2}, "3.14"),
    (float("nan"), 3, {}, "nan"),
    (float("inf"), 3, {}, "inf"),
])
def test_sig(v, digits, kw, want):
    assert fmt.sig(v, digits, **kw) == want


@pytest.mark.parametrize("r,want", [
    (1.0, "1.00"), (1.0234, "1.02"), (0.970873786, "0.971"), (2.8529999999999998, "2.85"),
    (12.345, "12.3"), (123.4, "123"), (None, "-"),
])
def test_ratio(r, want):
    assert fmt.ratio(r) == want


def test_ci():
    assert fmt.ci([0.98234, 1.0512]) == "[0.982, 1.05]"
    assert fmt.ci((0.98234, 1.0512), sep="-") == "0.982-1.05"
    assert fmt.ci(None) == "-" and fmt.ci([], none="(none)") == "(none)"


@pytest.mark.parametrize("p,want", [
    (0.076522500475059, "0.077"), (0.5, "0.50"), (1.0, "1.0"), (0.00012, "0.00012"),
    (3.2e-7, "<0.0001"), (0.0, "<0.0001"), (None, "-"),
])
def test_pvalue(p, want):
    assert fmt.pvalue(p) == want


@pytest.mark.parametrize("s,want", [
    (2.8529999999999998, "2.853"), (12.3456, "12.35"), (609.4321, "609.4"), (1234.56, "1235"),
    (0.01234, "0.012"), (0.0004, "0.000"), (60.0, "60.00"), (None, "-"),
])
def test_seconds(s, want):
    assert fmt.seconds(s) == want


@pytest.mark.parametrize("v,want", [
    (2.8529999999999998, "2.853"), (10.0, "10"), (6.666666, "6.667"), (123456, "123500"),
    (123456.7, "123500"), (0.00123456, "0.001235"), (None, "-"),
])
def test_metric(v, want):
    assert fmt.metric(v) == want


def test_num_keeps_counts_and_rounds_floats():
    assert fmt.num(123456) == "123456"  # a count (tokens, steps) is exact
    assert fmt.num(600.123456) == "600.1"
    assert fmt.num(0.1234567, digits=2) == "0.12"
    assert fmt.num(True) == "True"
    assert fmt.num(None) == "-"


def test_percent_usd_signed():
    assert fmt.percent(0.0361) == "3.6%" and fmt.percent(0.03) == "3%" and fmt.percent(0.12345) == "12%"
    assert fmt.percent(0.0012) == "0.12%" and fmt.percent(None) == "-"
    assert fmt.usd(0.012345) == "0.0123" and fmt.usd(1.5) == "1.50" and fmt.usd(0.0) == "0.00"
    assert fmt.usd(None, none="unknown") == "unknown"
    assert fmt.signed(-0.47412) == "-0.474" and fmt.signed(0.10234) == "+0.102" and fmt.signed(0.0) == "+0.000"
    assert fmt.signed(0.0001) == "+0.000" and fmt.signed(-0.0001) == "+0.000" and fmt.signed(None) == "-"
    assert fmt.signed(1.2549) == "+1.25" and fmt.signed(-12.345) == "-12.3"


def test_metrics_and_value():
    assert fmt.metrics({"wall_s": 2.8529999999999998, "ops_per_s": 123456, "note": "x"}) == \
        "wall_s=2.853, ops_per_s=123500, note=x"
    assert fmt.metrics(None) == ""
    assert fmt.value(0.076522500475059) == "0.07652" and fmt.value(7) == "7" and fmt.value("a b") == "a b"
    assert fmt.value({"wall_s": 1.23456789, "n": 3}) == "wall_s=1.235, n=3"


def test_rounded_keeps_structure_and_leaves_non_floats():
    got = fmt.rounded({"a": 2.8529999999999998, "b": [1.23456789, 3, "x"], "c": {"d": float("nan")}, "e": None})
    assert got["a"] == 2.853 and got["b"] == [1.235, 3, "x"] and got["e"] is None
    assert math.isnan(got["c"]["d"])
