"""Stage truth: the oracle at the schedule featurize wrote, not the one params.yaml declares."""

import datetime as dt
import json

import pandas as pd
import pytest
import yaml

from pipeline.core.oracle import truth_at
from pipeline.core.records import RecordError
from pipeline.core.shop import read_shop
from pipeline.stages import simulate, truth
from tests.conftest import ROOT, SMALL_SHOP
from tests.test_records import FITS


@pytest.fixture
def shop_files(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["simulate"] = SMALL_SHOP.model_copy(update={"truth_cutoffs": 2}).model_dump(mode="json")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw), encoding="utf-8")
    simulate.main(
        params_path=params,
        raw_path=tmp_path / "raw.csv",
        customers_path=tmp_path / "customers.parquet",
        orders_path=tmp_path / "orders.parquet",
    )
    return tmp_path, params


def run_truth(tmp, params, fits):
    truth.main(
        params_path=params,
        customers_path=tmp / "customers.parquet",
        orders_path=tmp / "orders.parquet",
        fits_path=fits,
        truth_path=tmp / "truth.parquet",
    )


def test_the_truth_follows_the_schedule_featurize_used(shop_files):
    """An adapted schedule (45-day horizon, 200-day lookback, a scoring date before the export's
    end): the truth is at the latest 2 cutoffs and the scoring date, over 45 days."""
    tmp, params = shop_files
    fits = tmp / "fits.json"
    fits.write_text(json.dumps(FITS.model_dump(mode="json")), encoding="utf-8")
    run_truth(tmp, params, fits)
    got = pd.read_parquet(tmp / "truth.parquet")
    wanted = [dt.date(2024, 9, 29), dt.date(2024, 10, 27), dt.date(2024, 12, 15)]
    assert sorted(got["cutoff"].dt.date.unique()) == wanted
    shop = read_shop(SMALL_SHOP, tmp / "customers.parquet", tmp / "orders.parquet")
    expected = truth_at(shop, cutoffs=wanted, horizon=45, lookback=200)
    pd.testing.assert_frame_equal(got, expected.astype({"cutoff": got["cutoff"].dtype}))
    # the 45-day window from 2024-12-15 runs past the export's end (2025-01-01): no label there
    assert got.loc[got["cutoff"] == "2024-12-15", "churned"].isna().all()
    assert got.loc[got["cutoff"] < "2024-12-15", "churned"].notna().all()


def test_a_fits_file_without_its_schedule_stops_the_stage(shop_files):
    tmp, params = shop_files
    broken = FITS.model_dump(mode="json")
    del broken["schedule"]
    fits = tmp / "fits.json"
    fits.write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(RecordError, match=r"fits.json: not a fits record \(schedule: Field required\)"):
        run_truth(tmp, params, fits)
    assert not (tmp / "truth.parquet").exists()
