import datetime as dt

from pipeline.cutoffs import iso_week_label, training_cutoffs


def test_schedule_ends_where_the_last_label_window_closes():
    cutoffs = training_cutoffs(dt.date(2026, 11, 16), horizon_days=90, every_days=14, n_cutoffs=3)
    assert cutoffs == [dt.date(2026, 7, 21), dt.date(2026, 8, 4), dt.date(2026, 8, 18)]
    assert cutoffs[-1] + dt.timedelta(days=90) == dt.date(2026, 11, 16)


def test_iso_week_label():
    assert iso_week_label(dt.date(2026, 11, 16)) == "2026-W47"
    assert iso_week_label(dt.date(2027, 1, 1)) == "2026-W53"
