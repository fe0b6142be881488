"""Stage featurize: what it writes for the stages after it."""

import datetime as dt
import json

import ibis

from pipeline.core.cutoffs import SplitNeeds
from pipeline.core.features import make_snapshots
from pipeline.core.records import Fits, read_record
from pipeline.stages.featurize import fits, write_outputs
from tests.conftest import FEATURE_LINES as LINES
from tests.conftest import FEATURE_PARAMS as PARAMS


def test_fits_json_is_the_typed_record_score_report_and_truth_read(tmp_path):
    spec = PARAMS.model_copy(update={"horizon_days": 30, "eligibility_lookback_days": 60, "n_cutoffs": 8})
    snaps = make_snapshots(ibis.memtable(LINES), spec, SplitNeeds(1, 1))
    write_outputs(
        snaps=snaps,
        score_out=tmp_path / "score.parquet",
        fits_out=tmp_path / "fits.json",
        metrics_out=tmp_path / "featurize.json",
        horizon_out=tmp_path / "horizons.csv",
    )
    record = read_record(tmp_path / "fits.json", Fits)
    assert record.score_date == dt.date(2024, 5, 16)
    assert record.cutoffs == snaps.schedule.cutoffs
    assert record.schedule.horizon_days == 30 and record.schedule.eligibility_lookback_days == 60
    assert record.btyd_at(record.score_date, "pareto_nbd") == snaps.btyd_params["2024-05-16"]["pareto_nbd"]
    # the metrics file repeats the record for people, with the counts beside it
    metrics = json.loads((tmp_path / "featurize.json").read_text(encoding="utf-8"))
    assert {k: metrics[k] for k in fits(snaps)} == fits(snaps)


def test_the_training_files_are_the_same_bytes_whatever_the_row_group_size(tmp_path, monkeypatch):
    from pipeline.core import io
    from pipeline.core.features import write_snapshots
    from pipeline.core.partitions import read_snapshots

    spec = PARAMS.model_copy(update={"horizon_days": 30, "eligibility_lookback_days": 60, "n_cutoffs": 8})
    whole = write_snapshots(ibis.memtable(LINES), spec, SplitNeeds(1, 1), train_out=tmp_path / "whole")
    assert whole.train is None
    assert int(whole.by_cutoff["rows"].sum()) == len(read_snapshots(tmp_path / "whole")) > 4
    # with row groups smaller than a cutoff's rows the rows and values stay the same
    monkeypatch.setattr(io, "ROW_GROUP_ROWS", 1)
    write_snapshots(ibis.memtable(LINES), spec, SplitNeeds(1, 1), train_out=tmp_path / "groups")
    assert read_snapshots(tmp_path / "groups").equals(read_snapshots(tmp_path / "whole"))


def test_no_eligible_customer_at_any_cutoff_is_one_clear_error_and_leaves_no_file(tmp_path, monkeypatch):
    import pytest

    from pipeline.core import features
    from pipeline.core.cutoffs import ScheduleError

    spec = PARAMS.model_copy(update={"horizon_days": 30, "eligibility_lookback_days": 60, "n_cutoffs": 8})
    monkeypatch.setattr(features, "record_batches", lambda expr, rows: iter(()))
    with pytest.raises(ScheduleError, match="no customer is eligible at any cutoff"):
        features.write_snapshots(ibis.memtable(LINES), spec, SplitNeeds(1, 1), train_out=tmp_path / "train")
    assert list(tmp_path.iterdir()) == []
