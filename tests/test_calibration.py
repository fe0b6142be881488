import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.calibration import Calibrator, choose, expected_calibration_error, fit_isotonic, fit_platt
from tests.conftest import examples


def test_ece_on_hand_made_bins():
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    p = np.array([0.15, 0.15, 0.15, 0.15, 0.85, 0.85, 0.85, 0.85])
    # bin 1: observed 0.25 vs 0.15; bin 8: observed 0.75 vs 0.85; each half the rows
    assert expected_calibration_error(y, p) == pytest.approx(0.1)


def test_platt_recovers_a_known_distortion():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.05, 0.95, 40_000)
    y = (rng.random(true_p.size) < true_p).astype(int)
    logit = np.log(true_p / (1 - true_p))
    distorted = 1 / (1 + np.exp(-(0.5 * logit + 0.7)))  # too flat and shifted up
    cal = fit_platt(distorted, y)
    assert cal.coef == pytest.approx((2.0, -1.4), abs=0.08)
    assert (
        expected_calibration_error(y, cal.apply(distorted)) < 0.01 < expected_calibration_error(y, distorted)
    )


def test_isotonic_is_monotone_and_round_trips():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 5000)
    y = (rng.random(p.size) < p**2).astype(int)
    cal = fit_isotonic(p, y)
    out = cal.apply(np.linspace(0, 1, 101))
    assert np.all(np.diff(out) >= 0)
    again = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_array_equal(again.apply(p), cal.apply(p))


def test_choose_keeps_a_calibrated_model_as_it_is():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.05, 0.95, 20_000)
    y = (rng.random(p.size) < p).astype(int)
    chosen, losses = choose(p, y, folds=np.arange(p.size) % 2)
    assert set(losses) == {"platt", "isotonic", "identity"}
    # Platt can only match an already calibrated model; it must not beat identity by more than noise
    assert losses["platt"] == pytest.approx(losses["identity"], abs=1e-3)
    assert chosen.method in {"identity", "platt"}


def test_a_calibrator_must_earn_its_place():
    rng = np.random.default_rng(4)
    true_p = rng.uniform(0.05, 0.95, 20_000)
    y = (rng.random(true_p.size) < true_p).astype(int)
    slightly_off = np.clip(true_p + 0.02, 0, 0.99)
    chosen, losses = choose(slightly_off, y, folds=np.arange(y.size) % 2, min_gain=0.01)
    assert min(losses["platt"], losses["isotonic"]) < losses["identity"]  # better, but under 1%
    assert chosen.method == "identity"
    chosen, _ = choose(slightly_off, y, folds=np.arange(y.size) % 2, min_gain=0.0)
    assert chosen.method != "identity"


def test_choose_picks_isotonic_when_no_sigmoid_can_undo_the_distortion():
    rng = np.random.default_rng(3)
    true_p = rng.uniform(0.01, 0.99, 30_000)
    y = (rng.random(true_p.size) < true_p).astype(int)
    # squeezed towards 0 and 1 around the middle: monotone, but not linear in the logit
    p = 0.5 + 0.5 * np.sign(true_p - 0.5) * np.abs(2 * true_p - 1) ** 0.3
    chosen, _ = choose(p, y, folds=np.arange(p.size) % 2)
    assert chosen.method == "isotonic"


def _rows(n: int, seed: int) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame(
        {
            "recency_days": rng.uniform(1, 300, n),
            "n_orders": rng.integers(1, 20, n).astype(float),
            "spend": rng.uniform(10, 500, n),
            "tenure_days": rng.uniform(300, 700, n),
            "pnbd_p_no_order": rng.uniform(0.05, 0.95, n),
        }
    )
    z = (
        0.01 * rows["recency_days"]
        - 0.1 * rows["n_orders"]
        + 1.5 * np.log(rows["pnbd_p_no_order"] / (1 - rows["pnbd_p_no_order"]))
    )
    rows["churned"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype("int8")
    model_p = 1 / (1 + np.exp(-(0.01 * rows["recency_days"] + rng.normal(0, 0.3, n))))
    return model_p.to_numpy(), rows


def test_the_blend_weighs_its_inputs_and_survives_a_round_trip_through_json():
    from pipeline.core.calibration import fit_blend, fit_rfm

    p, rows = _rows(5000, 1)
    blend = fit_blend(p, rows, fit_rfm(rows))
    assert blend.inputs == ("model", "rfm", "pnbd_p_no_order")  # BG/NBD is not in these rows
    assert blend.coef[2] == pytest.approx(1.5, abs=0.25)  # the BTYD log-odds carry their true weight
    again = Calibrator.from_dict(blend.to_dict())
    np.testing.assert_array_equal(again.apply(p, rows), blend.apply(p, rows))
    assert ((blend.apply(p, rows) > 0) & (blend.apply(p, rows) < 1)).all()
    with pytest.raises(ValueError, match="a blended model needs the snapshot"):
        blend.apply(p)


def test_a_blend_input_that_would_get_a_negative_weight_gets_none_and_the_rest_are_refitted():
    from pipeline.core.calibration import blend_inputs, fit_blend
    from pipeline.core.numerics import logistic_regression

    rng = np.random.default_rng(3)
    n = 4000
    a = rng.normal(0, 1, n)
    b = a + rng.normal(0, 0.5, n)  # a noisy copy of the model's signal
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(2.0 * a - 0.7 * b)))).astype("int8")
    p = 1 / (1 + np.exp(-a))
    rows = pd.DataFrame({"pnbd_p_no_order": 1 / (1 + np.exp(-b)), "churned": y})
    x = blend_inputs(p=p, snapshot=rows, inputs=("model", "pnbd_p_no_order"), rfm={})
    free = logistic_regression(x, y, c=1e6, standardize=False)
    assert free.coef[1] < -0.3  # unconstrained, the copy is played against the signal
    blend = fit_blend(p, rows, {})
    alone = logistic_regression(x[:, :1], y, c=1e6, standardize=False)
    assert blend.inputs == ("model", "pnbd_p_no_order")
    assert blend.coef == (alone.coef[0], 0.0)
    assert blend.intercept == alone.intercept


@settings(max_examples=examples(25), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), weight=st.floats(-3.0, 3.0))
def test_blend_weights_are_never_negative(seed, weight):
    from pipeline.core.calibration import fit_blend

    p, rows = _rows(600, seed)
    z = np.log(p / (1 - p)) + weight * np.log(rows["pnbd_p_no_order"] / (1 - rows["pnbd_p_no_order"]))
    rows["churned"] = (np.random.default_rng(seed).uniform(size=len(p)) < 1 / (1 + np.exp(-z))).astype("int8")
    blend = fit_blend(p, rows, {})
    assert min(blend.coef) >= 0.0
    assert len(blend.coef) == len(blend.inputs)


def test_a_blend_without_rfm_columns_uses_the_model_alone():
    from pipeline.core.calibration import fit_blend

    p, rows = _rows(2000, 2)
    blend = fit_blend(p, rows[["churned"]], {})
    assert blend.inputs == ("model",)


def test_leveling_gives_each_cutoff_the_boosters_mean_and_keeps_the_calibrators_order():
    snapshot = pd.DataFrame({"cutoff": pd.to_datetime(["2024-01-01"] * 2 + ["2024-02-01"] * 3)})
    booster = np.array([0.2, 0.8, 0.2, 0.2, 0.2])  # mean 0.5 in January, 0.2 in February
    sharper = Calibrator("platt", (2.0, 1.0), level=True)  # sigmoid(2 logit(p) + 1), then leveled
    out = sharper.apply(booster, snapshot)
    # January: sigmoid(2 logit(p)) is 1/17 and 16/17, mean 0.5 as the booster's: the +1 is undone
    np.testing.assert_allclose(out[:2], [1 / 17, 16 / 17], rtol=0, atol=1e-12)
    # February: three equal rows leveled to the booster's 0.2 there, whatever the calibrator said
    np.testing.assert_allclose(out[2:], 0.2, rtol=0, atol=1e-12)
    # each cutoff on its own: the same January rows give the same numbers without February's
    np.testing.assert_allclose(sharper.apply(booster[:2], snapshot.iloc[:2]), out[:2], rtol=0, atol=1e-15)
    assert Calibrator.from_dict(sharper.to_dict()) == sharper
    with pytest.raises(ValueError, match="a leveled blend needs the snapshot's cutoff column"):
        sharper.apply(booster)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(st.floats(0.001, 0.999), min_size=1, max_size=40),
    st.floats(0.001, 0.999),
)
def test_a_level_shift_hits_its_target_mean_and_keeps_the_order(q, target):
    from pipeline.core.calibration import level_shift, shifted

    q = np.array(q)
    out = shifted(q, level_shift(q, target))
    assert out.mean() == pytest.approx(target, abs=1e-9)
    assert (np.diff(out[np.argsort(q, kind="stable")]) >= -1e-15).all()
