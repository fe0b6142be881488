import json

import numpy as np
import pandas as pd
import pytest

from pipeline.core.calibration import Calibrator
from pipeline.core.contributions import BASE, contributions
from pipeline.core.fitting import fit
from pipeline.core.model import ChurnModel
from pipeline.core.params import load_params
from pipeline.stages.monitor import DriftError, binned, drift_report, psi
from pipeline.stages.score import ScoreError, check_verdict
from tests.conftest import ROOT
from tests.conftest import TRAIN_PARAMS as TRAIN

MONITOR = load_params(ROOT / "params.yaml").monitor  # warn at 0.1, stop at 0.25


def test_psi_of_known_distributions():
    assert psi([50, 50], [50, 50]) == 0.0
    # (0.6 - 0.4) ln(0.6/0.4) + (0.4 - 0.6) ln(0.4/0.6) = 0.4 ln 1.5
    assert psi([40, 60], [60, 40]) == pytest.approx(0.4 * np.log(1.5))
    # an empty bin counts as 1e-4, so a category seen on one side only is finite but large
    assert psi([100, 0], [50, 50]) == pytest.approx(-0.5 * np.log(0.5) + (0.5 - 1e-4) * np.log(0.5 / 1e-4))


def test_bins_by_reference_quantiles_with_missing_and_unseen_bins():
    ref = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan])
    counts = binned(ref, pd.Series([0.5, 10.0, np.nan, np.nan]), bins=2)
    # one edge at the median 2.5: (<2.5, >=2.5, missing)
    assert [c.tolist() for c in counts] == [[2, 2, 1], [1, 1, 2]]
    counts = binned(pd.Series(["uk", "fr", "uk"]), pd.Series(["uk", "de"]), bins=10)
    assert [c.tolist() for c in counts] == [[1, 2, 0], [0, 1, 1]]  # fr, uk, <unseen>
    assert (
        binned(pd.Series([5.0, 5.0]), pd.Series([1.0, 9.0]), bins=10) is None
    )  # constant: a cutoff-level value


def _population(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 300, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{seed}-{i}" for i in range(n)],
            "cutoff": pd.Timestamp("2026-08-18"),
            "horizon_days": np.int32(90),
            "recency_days": recency,
            "spend_365d": rng.gamma(2.0, 40.0, n),
            "country": rng.choice(["United Kingdom", "Germany", "France"], n, p=[0.6, 0.25, 0.15]),
        }
    )
    frame["churned"] = (rng.uniform(0, 300, n) < recency).astype("int8")
    return frame


@pytest.fixture(scope="module")
def model() -> ChurnModel:
    plain = TRAIN.model_copy(update={"boost_from": None})  # these populations have no BTYD column
    return ChurnModel(fit(_population(3000, 1), _population(1000, 2), plain), Calibrator("identity"))


def _report(model: ChurnModel, reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    contrib = contributions(model, current).drop(columns=[BASE])
    return drift_report(
        reference=reference, current=current, model=model, current_contrib=contrib, params=MONITOR
    )


def test_the_same_population_a_quarter_later_is_stable(model):
    report = _report(model, _population(4000, 3), _population(4000, 4))
    assert report["status"] == "ok"
    assert report["max_feature_psi"] < 0.1 and report["score_psi"] < 0.1


def test_doubled_prices_stop_scoring_with_the_column_named(model):
    current = _population(4000, 4)
    current["spend_365d"] *= 2  # the export switched to another currency or unit
    report = _report(model, _population(4000, 3), current)
    assert report["status"] == "stop"
    assert next(iter(report["drifted"])) == "spend_365d" and report["drifted"]["spend_365d"] > 0.25
    assert "recency_days" not in report["drifted"]


def test_a_vanished_country_is_named(model):
    current = _population(4000, 4)
    current = current[current["country"] != "United Kingdom"].reset_index(drop=True)
    report = _report(model, _population(4000, 3), current)
    assert report["status"] == "stop" and "country" in report["drifted"]


def test_the_stage_refuses_to_let_scoring_run_or_only_warns(tmp_path, model, monkeypatch):
    from pipeline.stages import monitor

    reference = _population(4000, 3)
    current = _population(4000, 4).assign(spend_365d=lambda f: f["spend_365d"] * 2)
    paths = {name: tmp_path / f"{name}.parquet" for name in ("train", "score", "shap")}
    reference.to_parquet(paths["train"])
    current.to_parquet(paths["score"])
    contributions(model, current).to_parquet(paths["shap"])
    monkeypatch.setattr(monitor.ChurnModel, "load", classmethod(lambda cls, folder: model))
    args = (
        paths["train"],
        paths["score"],
        tmp_path,
        paths["shap"],
        tmp_path / "m.json",
        tmp_path / "psi.csv",
        tmp_path / "verdict.json",
    )
    verdict = tmp_path / "verdict.json"
    verdict.write_text('{"score_date": "2026-09-01", "status": "ok", "may_score": true}')  # a stale pass
    with pytest.raises(
        DriftError, match=r"drifted from the training cutoff 2026-08-18: PSI spend_365d \d\.\d\d"
    ):
        monitor.main(ROOT / "params.yaml", *args)
    assert (tmp_path / "m.json").exists()  # the report is there to read
    score_date = current["cutoff"].iloc[0].date().isoformat()
    assert json.loads(verdict.read_text()) == {"score_date": score_date, "status": "stop", "may_score": False}
    with pytest.raises(
        ScoreError, match=f"the drift check stopped scoring of {score_date} \\(status stop\\)"
    ):
        check_verdict(verdict, current)
    warn_only = tmp_path / "params.yaml"
    warn_only.write_text((ROOT / "params.yaml").read_text().replace("action: stop", "action: warn"))
    assert monitor.main(warn_only, *args)["status"] == "stop"
    assert json.loads(verdict.read_text()) == {"score_date": score_date, "status": "stop", "may_score": True}
    check_verdict(verdict, current)  # warned, and scoring goes on
    with pytest.raises(
        ScoreError, match=f"the drift check was for the snapshot of {score_date}, not 2027-01-04"
    ):
        check_verdict(verdict, current.assign(cutoff=pd.Timestamp("2027-01-04")))
