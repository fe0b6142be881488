import datetime as dt
import json

import pytest

from pipeline.core.records import Fits, RecordError, ScheduleRecord, Verdict, read_record

SCHEDULE = ScheduleRecord(
    horizon_days=45,
    cutoff_every_days=28,
    eligibility_lookback_days=200,
    history_before_first_cutoff_days=200,
    n_cutoffs=3,
    first_cutoff=dt.date(2024, 9, 1),
    last_cutoff=dt.date(2024, 10, 27),
    adapted=["horizon 60 -> 45 days"],
)
FITS = Fits(
    score_date=dt.date(2024, 12, 15),
    schedule=SCHEDULE,
    cutoffs=[dt.date(2024, 9, 1), dt.date(2024, 9, 29), dt.date(2024, 10, 27)],
    btyd_params_by_cutoff={"2024-12-15": {"pareto_nbd": {"r": 0.5, "alpha": 9.0, "s": 0.6, "beta": 8.0}}},
)


def write(path, record):
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def test_a_record_reads_back_as_written(tmp_path):
    path = write(tmp_path / "fits.json", FITS.model_dump(mode="json"))
    assert json.loads(path.read_text())["score_date"] == "2024-12-15"
    back = read_record(path, Fits)
    assert back == FITS
    assert back.btyd_at(dt.date(2024, 12, 15), "pareto_nbd") == {
        "r": 0.5,
        "alpha": 9.0,
        "s": 0.6,
        "beta": 8.0,
    }


def test_a_missing_or_wrong_field_is_named_with_the_file(tmp_path):
    broken = FITS.model_dump(mode="json")
    del broken["schedule"]["horizon_days"]
    broken["cutoffs"][1] = "someday"
    path = write(tmp_path / "fits.json", broken)
    with pytest.raises(RecordError) as err:
        read_record(path, Fits)
    message = str(err.value)
    assert message.startswith(f"{path}: not a fits record (")
    assert "schedule.horizon_days: Field required" in message
    assert "cutoffs.1: Input should be a valid date" in message
    assert message.endswith("rerun the stage that writes it")


def test_a_verdict_must_say_whether_scoring_may_go_on(tmp_path):
    path = write(
        tmp_path / "verdict.json", {"score_date": "2024-12-15", "status": "ok", "may_score": "perhaps"}
    )
    with pytest.raises(RecordError, match=r"may_score: Input should be a valid boolean"):
        read_record(path, Verdict)
    write(path, {"score_date": "2024-12-15", "status": "stop", "may_score": False})
    assert read_record(path, Verdict) == Verdict(
        score_date=dt.date(2024, 12, 15), status="stop", may_score=False
    )


def test_not_json_and_no_fit_are_one_line_errors(tmp_path):
    path = tmp_path / "fits.json"
    path.write_text('{"score_date": ', encoding="utf-8")
    with pytest.raises(RecordError, match=r"fits.json: not valid JSON"):
        read_record(path, Fits)
    with pytest.raises(RecordError, match=r"fits.json has no bgnbd fit at 2024-12-15: rerun featurize"):
        FITS.btyd_at(dt.date(2024, 12, 15), "bgnbd")
