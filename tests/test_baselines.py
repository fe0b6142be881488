from functools import partial

import numpy as np
import pandas as pd

from pipeline.core.baselines import baseline_scores, lightgbm_rfm, logistic_rfm, rfm_matrix
from tests.conftest import train_snapshots


def _rfm(seed: int) -> pd.DataFrame:
    frame = train_snapshots(n=2000, seed=seed)
    rng = np.random.default_rng(seed)
    return frame.assign(spend=frame["n_orders"] * rng.uniform(5, 50, len(frame)), tenure_days=400.0)


def test_the_rfm_matrix_is_log1p_of_the_four_numbers_with_negatives_at_zero():
    frame = pd.DataFrame(
        {
            "recency_days": [0.0, np.e - 1],
            "n_orders": [1.0, 3.0],
            "spend": [-20.0, 0.0],
            "tenure_days": [9.0, 0.0],
        }
    )
    np.testing.assert_allclose(
        rfm_matrix(frame), [[0.0, np.log(2), 0.0, np.log(10)], [1.0, np.log(4), 0.0, 0.0]]
    )


def test_every_baseline_scores_every_held_out_row_and_btyd_only_when_present():
    train, held = _rfm(1), _rfm(2)
    scores = baseline_scores(train, held.drop(columns=["bgnbd_p_no_order"]), threads=1)
    assert list(scores) == ["recency", "logistic_rfm", "lightgbm_rfm"]
    assert scores["recency"][1] is False
    np.testing.assert_array_equal(scores["recency"][0], held["recency_days"].to_numpy())
    with_btyd = baseline_scores(train, held, threads=1)
    assert list(with_btyd) == ["recency", "logistic_rfm", "lightgbm_rfm", "bg_nbd"]
    np.testing.assert_array_equal(with_btyd["bg_nbd"][0], held["bgnbd_p_no_order"].to_numpy())


def test_the_learned_baselines_are_probabilities_that_rank_by_recency_here():
    """In these snapshots churn follows recency: both learned baselines find it, and the same
    training rows give the same scores."""
    from sklearn.metrics import roc_auc_score

    train, held = _rfm(1), _rfm(2)
    for scorer in (logistic_rfm, partial(lightgbm_rfm, threads=2)):
        p = scorer(train, held)
        assert ((p > 0) & (p < 1)).all()
        assert roc_auc_score(held["churned"], p) > 0.75
        np.testing.assert_array_equal(p, scorer(train, held))


def test_saved_scores_are_read_back_only_for_the_same_rows_recipe_and_snapshots(tmp_path):
    from pipeline.core.baselines import load_scores, save_scores

    held_out = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "cutoff": pd.to_datetime(["2024-01-01"] * 3),
            "churned": [0, 1, 1],
        },
        index=[7, 8, 9],  # a slice of a larger table
    )
    scores = {
        "recency": (np.array([3.0, 40.0, 12.5]), False),
        "logistic_rfm": (np.array([0.1, 0.7, 1 / 3]), True),
    }
    fitted_by = {"recipe_sha256": "r1", "snapshots_sha256": "s1"}
    path = tmp_path / "baselines.parquet"
    save_scores(scores, held_out=held_out, fitted_by=fitted_by, path=path)
    read = load_scores(path, held_out=held_out, fitted_by=fitted_by)
    assert read is not None and list(read) == ["recency", "logistic_rfm"]
    for name, (score, probability) in scores.items():
        assert read[name][1] is probability
        assert read[name][0].tolist() == score.tolist()  # to the last bit
    assert load_scores(path, held_out=held_out, fitted_by={**fitted_by, "recipe_sha256": "r2"}) is None
    assert load_scores(path, held_out=held_out, fitted_by={**fitted_by, "snapshots_sha256": "s2"}) is None
    assert load_scores(path, held_out=held_out.iloc[::-1], fitted_by=fitted_by) is None  # other order
    assert load_scores(path, held_out=held_out.iloc[:2], fitted_by=fitted_by) is None
    assert load_scores(tmp_path / "none.parquet", held_out=held_out, fitted_by=fitted_by) is None
    assert load_scores(None, held_out=held_out, fitted_by=fitted_by) is None
