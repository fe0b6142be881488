import numpy as np
import pandas as pd
import pytest

from pipeline.stages.evaluate import lift_table


def test_lift_table():
    y = np.array([1, 0] * 10)
    p = np.linspace(1, 0, 20)
    table = lift_table(y, p)
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["churn_rate"].tolist() == [0.5] * 10
    assert table["cumulative_capture"].iloc[-1] == pytest.approx(1.0)


def test_segments_and_their_reliability_tables():
    import pandas as pd

    from pipeline.stages.evaluate import segment_masks, segment_reliability

    held_out = pd.DataFrame(
        {
            "n_orders": [1.0, 1.0, 3.0, 5.0, 2.0, 1.0],
            "tenure_days": [10.0, 200.0, 400.0, 30.0, 500.0, 700.0],
            "spend_365d": [5.0, 10.0, 100.0, 300.0, 50.0, 20.0],
        }
    )
    masks = segment_masks(held_out, new_customer_days=90)
    assert masks["one_time"].tolist() == [True, True, False, False, False, True]
    assert masks["new"].tolist() == [True, False, False, True, False, False]
    assert masks["value_high"].tolist() == [False, False, True, True, False, False]
    assert masks["value_low"].tolist() == [True, True, False, False, False, False]  # terciles: 16.7, 66.7
    y = np.array([1, 1, 0, 0, 1, 1])
    p = np.array([0.95, 0.85, 0.15, 0.05, 0.55, 0.95])
    table = segment_reliability(y, p, {"one_time": masks["one_time"]}, bins=10)
    assert table.to_dict(orient="list") == {
        "segment": ["one_time", "one_time"],
        "predicted": [0.85, 0.95],
        "observed": [1.0, 1.0],
        "rows": [1, 2],
    }


def test_the_curves_draw_every_baseline_beside_the_model_and_the_figure_has_four_panels():
    from pipeline.core.params import EvaluateParams
    from pipeline.stages.evaluate import curves, figure

    y = np.array([1, 0, 1, 0, 0, 1])
    p = np.array([0.9, 0.1, 0.8, 0.5, 0.2, 0.4])
    recency = np.array([300.0, 10.0, 20.0, 30.0, 5.0, 200.0])
    params = EvaluateParams(top_share=0.5, calibration_bins=2, new_customer_days=90)
    tables = curves(y=y, scores={"recency": recency}, p=p, params=params)
    roc = tables["roc"]
    assert roc["scorer"].unique().tolist() == ["model", "recency"]
    # the model ranks the three churners 1st, 2nd and 4th: ROC passes (0, 2/3) then (1/3, 1)
    model = roc[roc["scorer"] == "model"][["fpr", "tpr"]].to_numpy().tolist()
    assert model[0] == [0.0, 0.0] and model[-1] == [1.0, 1.0]
    assert [0.0, 2 / 3] in model and [1 / 3, 2 / 3] in model and [1 / 3, 1.0] in model
    assert tables["pr"]["scorer"].unique().tolist() == ["model", "recency"]
    metrics = {"roc_auc": 0.9, "pr_auc": 0.8, "ece": 0.1, "brier": 0.1}
    report = {"model": metrics, "baselines": {"recency": metrics}, "churn_rate": 0.5}
    fig = figure(tables, report)
    assert len(fig.axes) == 4
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["model 0.900", "recency 0.900"]


def test_the_held_out_report_becomes_mlflow_metrics_grouped_by_prefix():
    from pipeline.stages.evaluate import mlflow_metrics

    report = {
        "rows": 100,
        "churn_rate": 0.3,
        "calibration": "platt",
        "model": {"roc_auc": 0.8, "ece": 0.02},
        "model_uncalibrated": {"roc_auc": 0.8},
        "baselines": {"recency": {"roc_auc": 0.7}, "bg_nbd": {"roc_auc": 0.75, "ece": 0.03}},
        "segments": {"new": {"rows": 10.0}},
        "champion": {"version": "2", "compared": True, "roc_auc": 0.79},
    }
    assert mlflow_metrics(report) == {
        "test/rows": 100.0,
        "test/churn_rate": 0.3,
        "test/roc_auc_gap_to_best_baseline": pytest.approx(0.05),
        "test/roc_auc": 0.8,
        "test/ece": 0.02,
        "uncalibrated/roc_auc": 0.8,
        "baseline/recency.roc_auc": 0.7,
        "baseline/bg_nbd.roc_auc": 0.75,
        "baseline/bg_nbd.ece": 0.03,
        "segment/new.rows": 10.0,
        "champion/roc_auc": 0.79,
    }


def test_the_held_out_rows_are_the_test_cutoffs_whole_and_the_training_cutoffs_baseline_columns(
    small_shop, tmp_path
):
    from pipeline.core.baselines import TRAINING_INPUTS
    from pipeline.core.partitions import read_snapshots
    from pipeline.stages.evaluate import held_out_rows
    from tests.test_partitions import _run

    folder = tmp_path / "train"
    _run(small_shop, folder)
    whole = read_snapshots(folder)
    cutoffs = sorted(whole["cutoff"].unique())
    summary = {
        "test_cutoffs": [str(pd.Timestamp(cutoffs[-1]).date())],
        "train_cutoffs": [str(pd.Timestamp(c).date()) for c in cutoffs[:3]],
    }
    test, fit_rows = held_out_rows(folder, summary)
    pd.testing.assert_frame_equal(test, whole[whole["cutoff"] == cutoffs[-1]].reset_index(drop=True))
    expected = whole.loc[whole["cutoff"].isin(cutoffs[:3]), list(TRAINING_INPUTS)]
    pd.testing.assert_frame_equal(fit_rows.reset_index(drop=True), expected.reset_index(drop=True))
