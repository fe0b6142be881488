import numpy as np
import pandas as pd
import pytest

from pipeline.core.calibration import Calibrator
from pipeline.core.fitting import (
    TrainError,
    fit,
    fit_churn_model,
    holdout_customers,
    preflight,
    temporal_split,
)
from pipeline.core.model import booster_probability
from tests.conftest import TRAIN_PARAMS as PARAMS
from tests.conftest import train_snapshots as _snapshots

START = Calibrator("identity", boost_from="bgnbd_p_no_order", offset_mean=0.25)


def _cutoffs(*days: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(d) for d in days]


def test_the_split_trains_on_every_cutoff_whose_label_closed_by_the_test_cutoff():
    cutoffs = _cutoffs(*pd.date_range("2024-01-01", periods=12, freq="14D").strftime("%Y-%m-%d"))
    split = temporal_split(cutoffs, horizon_days=30, params=PARAMS)
    assert split.test == _cutoffs("2024-06-03")
    # 2024-04-22 + 30 days = 2024-05-22 <= 2024-06-03 < 2024-05-06 + 30 days
    assert split.train == cutoffs[: cutoffs.index(pd.Timestamp("2024-04-22")) + 1]


def test_split_refuses_when_no_label_closes_before_the_test_cutoff_with_the_dates():
    with pytest.raises(TrainError) as err:
        temporal_split(_cutoffs("2024-01-01", "2024-01-15", "2024-01-29"), horizon_days=30, params=PARAMS)
    assert str(err.value).startswith(
        "no cutoff's 30-day label window closes by the first test cutoff 2024-01-29: the earliest "
        "cutoff, 2024-01-01, closes on 2024-01-31."
    )


def test_held_out_customers_keep_all_their_cutoffs_on_one_side_and_are_the_same_every_run():
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(2000)] * 2})
    held = holdout_customers(frame, 0.2, seed=3)
    assert (held[:2000] == held[2000:]).all()
    assert 0.17 < held[:2000].mean() < 0.23
    assert (held == holdout_customers(frame, 0.2, seed=3)).all()
    assert not (held == holdout_customers(frame, 0.2, seed=4)).all()


def test_the_recipe_refits_on_every_row_with_the_rounds_early_stopping_found():
    rows = pd.concat(
        [_snapshots(seed=1).assign(cutoff=pd.Timestamp(d)) for d in ("2024-01-01", "2024-01-15")]
    )
    rows["customer_id"] = rows["customer_id"] + rows["cutoff"].dt.strftime("-%d")  # distinct customers
    fitted = fit_churn_model(rows.reset_index(drop=True), PARAMS)
    assert fitted.booster.current_iteration() == fitted.best_iteration <= PARAMS.max_rounds
    assert fitted.calibration_cutoffs == [pd.Timestamp("2024-01-15")]
    assert set(fitted.valid_scores) == {"valid_binary_logloss", "valid_auc"}


def test_training_is_deterministic(booster):
    again = fit(_snapshots(seed=1), _snapshots(seed=2), PARAMS)
    assert booster.model_to_string() == again.model_to_string()


@pytest.mark.parametrize("boost_from", ["bgnbd_p_no_order", None])
def test_the_booster_starts_from_the_btyd_log_odds_or_else_from_the_churn_rate(boost_from):
    train, valid = _snapshots(seed=1), _snapshots(seed=2)
    still = PARAMS.model_copy(update={"boost_from": boost_from, "learning_rate": 1e-9, "max_rounds": 1})
    b = fit(train, valid, still)
    p = booster_probability(b, valid, boost_from)
    expected = valid["bgnbd_p_no_order"] if boost_from else np.full(len(valid), train["churned"].mean())
    np.testing.assert_allclose(p, expected, atol=1e-6)


def test_boosting_from_a_column_the_snapshots_lack_is_refused_by_name():
    other = PARAMS.model_copy(update={"boost_from": "pnbd_p_no_order"})
    with pytest.raises(TrainError, match=r"train\.boost_from = pnbd_p_no_order, but the snapshots have no"):
        fit(_snapshots(seed=1), _snapshots(seed=2), other)


def test_the_recipe_records_the_initial_scores_training_mean_and_levels_only_a_blend():
    rows = _snapshots(seed=1)
    blended = fit_churn_model(rows, PARAMS)
    held = holdout_customers(rows, PARAMS.valid_share, PARAMS.seed)
    p = rows["bgnbd_p_no_order"][~held]
    assert blended.calibrator.boost_from == "bgnbd_p_no_order"
    assert blended.calibrator.offset_mean == pytest.approx(float(np.mean(np.log(p / (1 - p)))), abs=1e-12)
    assert blended.calibrator.method == "blend" and blended.calibrator.level
    plain = fit_churn_model(rows, PARAMS.model_copy(update={"blend": False}))
    assert not plain.calibrator.level


def test_preflight_accepts_enough_customers_and_both_classes():
    preflight({"training": _snapshots(seed=1), "validation": _snapshots(seed=2)}, PARAMS)


def test_preflight_refuses_a_handful_of_customers():
    with pytest.raises(TrainError, match=r"only 30 distinct customers in the training cutoffs"):
        preflight({"training": _snapshots(n=30)}, PARAMS)


def test_preflight_refuses_cutoffs_without_non_churners():
    everyone_churns = _snapshots(seed=3).assign(churned=np.int8(1))
    with pytest.raises(TrainError) as err:
        preflight({"training": _snapshots(seed=1), "test": everyone_churns}, PARAMS)
    assert "the test cutoffs hold 600 churners and 0 non-churners" in str(err.value)
    assert "labels nearly everyone churned; change featurize.horizon_days" in str(err.value)


def test_the_row_cap_keeps_every_cutoff_of_a_share_of_customers_independent_of_the_holdout():
    import pandas as pd

    from pipeline.core.fitting import cap_rows, holdout_customers

    ids = [f"c{i:05d}" for i in range(4000)]
    rows = pd.DataFrame(
        {
            "customer_id": ids * 3,
            "cutoff": pd.to_datetime(["2024-01-01"] * 4000 + ["2024-02-01"] * 4000 + ["2024-03-01"] * 4000),
        }
    )
    assert cap_rows(rows, None, seed=1) is rows and cap_rows(rows, 12_000, seed=1) is rows
    kept = cap_rows(rows, 3_000, seed=1)
    assert 2_700 < len(kept) < 3_300  # a quarter of the customers, by hash
    assert kept.groupby("customer_id").size().eq(3).all()  # each kept customer at every cutoff
    assert kept.equals(cap_rows(rows, 3_000, seed=1))  # the same customers every run
    # the early-stopping holdout keeps its share among the kept customers (an independent hash)
    held = holdout_customers(kept, 0.2, seed=1).mean()
    assert abs(held - 0.2) < 0.03


def test_rows_read_by_the_capped_mask_fit_the_model_of_the_whole_table():
    """The train stage reads only the rows its two fits learn from after the cap; fitted with the
    whole set's row count, they give the same booster, to the last split and leaf value."""
    from pipeline.core.fitting import cap_rows, capped_mask, select

    start = pd.Timestamp("2024-01-01")
    frames = [_snapshots(seed=k).assign(cutoff=start + pd.Timedelta(days=14 * k)) for k in range(4)]
    whole = pd.concat(frames, ignore_index=True)
    params = PARAMS.model_copy(update={"max_rows": len(whole) // 3})
    early, every = sorted(whole["cutoff"].unique())[:3], sorted(whole["cutoff"].unique())
    mask = capped_mask(whole[["customer_id", "cutoff"]], [early, every], params)
    n_early = int(whole["cutoff"].isin(early).sum())
    # every row of the customers each cap keeps, and no other row
    kept = cap_rows(select(whole, early), params.max_rows, params.seed).index.union(
        cap_rows(whole, params.max_rows, params.seed).index
    )
    assert np.flatnonzero(mask).tolist() == kept.tolist()
    assert mask.sum() < 0.5 * len(whole)  # the cap bites
    read = whole[mask].reset_index(drop=True)
    for rows, cutoffs, total in ((read, every, len(whole)), (select(read, early), early, n_early)):
        alone = fit_churn_model(select(whole, cutoffs), params).booster.model_to_string()
        assert fit_churn_model(rows, params, total=total).booster.model_to_string() == alone
    # at or below the cap every row of the set is read
    roomy = PARAMS.model_copy(update={"max_rows": len(whole)})
    assert capped_mask(whole[["customer_id", "cutoff"]], [early, every], roomy).all()
