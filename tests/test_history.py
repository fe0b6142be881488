"""The history carried between featurize runs: its dates, its canonical rows, and a folder that is
read only when it still holds and replaced whole. (That a chain of weekly runs carrying it equals a
full run byte for byte is in test_partitions.py.)"""

import datetime as dt

import ibis
import pandas as pd
import pytest

from pipeline.core import history
from pipeline.core.history import FOREVER, canonical, carry_dates, epoch

D = dt.date.fromisoformat


def test_carry_dates_are_the_grid_after_the_last_cutoff_up_to_the_scoring_date_and_that_date():
    assert carry_dates(D("2024-10-14"), D("2024-11-25"), 14) == [
        D("2024-10-28"),
        D("2024-11-11"),
        D("2024-11-25"),
    ]
    # a scoring date off the grid is added to it
    assert carry_dates(D("2024-10-14"), D("2024-11-20"), 14) == [
        D("2024-10-28"),
        D("2024-11-11"),
        D("2024-11-20"),
    ]
    assert carry_dates(D("2024-10-14"), D("2024-10-20"), 14) == [D("2024-10-20")]


def test_canonical_rows_start_and_end_at_carry_dates_and_only_those_that_hold_at_one_remain():
    days = [D("2024-03-01"), D("2024-03-15"), D("2024-03-29")]
    s = {d: epoch(d) for d in [*days, D("2024-02-01"), D("2024-02-15"), D("2024-03-20")]}
    state = ibis.memtable(
        pd.DataFrame(
            {
                "customer_id": ["a", "a", "a", "b", "c", "c"],
                # a: a row before the carry dates, one from before them into them, one after;
                # b: one row from before them on; c: rows that end before the first carry date
                "from_s": [s[D(d)] for d in ("2024-02-01", "2024-02-15", "2024-03-20")]
                + [s[D(d)] for d in ("2024-02-01", "2024-02-01", "2024-02-15")],
                "until_s": [s[D("2024-02-15")], s[D("2024-03-20")], FOREVER, FOREVER]
                + [s[D(d)] for d in ("2024-02-15", "2024-03-01")],
                "n_orders": [1, 2, 3, 1, 1, 2],
            }
        )
    )
    got = canonical(state, days).to_pandas()
    # a's second row holds at the first two carry dates, its third from 03-29 on; c's rows end at
    # or before the first carry date, so they hold at none
    assert got.to_dict(orient="list") == {
        "customer_id": ["a", "a", "b"],
        "from_s": [s[days[0]], s[days[2]], s[days[0]]],
        "until_s": [s[days[2]], FOREVER, FOREVER],
        "n_orders": [2, 3, 1],
    }


def _write(train, lines_digest="L", context="C"):
    state = ibis.memtable(
        pd.DataFrame({"customer_id": ["a"], "from_s": [epoch(D("2024-03-01"))], "until_s": [FOREVER]})
    )
    gaps = ibis.memtable(pd.DataFrame({"gap_s": [86_400, 3_600]}))
    history.write(
        train,
        state=state,
        gaps=gaps,
        attributes=None,
        score_date=D("2024-03-01"),
        dates=[D("2024-03-01")],
        context=context,
        lines_digest=lines_digest,
    )


def test_a_history_is_read_only_while_its_lines_and_context_hold(tmp_path):
    con = ibis.duckdb.connect()
    train = tmp_path / "train"
    assert history.carried_date(train) is None
    assert history.read(train, con, "C", {D("2024-03-01"): "L"}) is None
    _write(train)
    assert history.carried_date(train) == D("2024-03-01")
    carried = history.read(train, con, "C", {D("2024-03-01"): "L"})
    assert carried is not None and carried.attributes is None
    assert carried.gaps.to_pandas()["gap_s"].tolist() == [3_600, 86_400]  # written sorted
    assert carried.covers([D("2024-02-01") + dt.timedelta(days=29), D("2024-04-01")])
    assert not carried.covers([D("2024-02-15")])  # before its date and not a carry date
    assert history.read(train, con, "other", {D("2024-03-01"): "L"}) is None
    assert history.read(train, con, "C", {D("2024-03-01"): "changed"}) is None
    # a damaged table is refused when read, not when a query reaches it
    state = train / history.FOLDER / "state.parquet"
    whole = state.read_bytes()
    state.write_bytes(b"garbage")
    assert history.read(train, con, "C", {D("2024-03-01"): "L"}) is None
    state.write_bytes(whole)
    assert history.read(train, con, "C", {D("2024-03-01"): "L"}) is not None
    (train / history.FOLDER / history.META).write_text("{not json")
    assert history.read(train, con, "C", {D("2024-03-01"): "L"}) is None


def test_a_write_that_fails_leaves_the_old_history_whole_and_no_half_written_folder(tmp_path):
    train = tmp_path / "train"
    # as a run killed while writing leaves it: removed by the next write
    (train / f"{history.FOLDER}.0123.tmp").mkdir(parents=True)
    _write(train)
    assert [p.name for p in train.iterdir()] == [history.FOLDER]
    before = {p.name: p.read_bytes() for p in (train / history.FOLDER).iterdir()}
    broken = ibis.memtable(pd.DataFrame({"gap_s": ["x"]})).select(gap_s=ibis._.gap_s.cast("int64"))
    with pytest.raises(Exception, match=r"(?i)conver|cast"):
        history.write(
            train,
            state=ibis.memtable(pd.DataFrame({"customer_id": ["a"]})),
            gaps=broken,
            attributes=None,
            score_date=D("2024-03-08"),
            dates=[D("2024-03-08")],
            context="C",
            lines_digest="L2",
        )
    assert {p.name: p.read_bytes() for p in (train / history.FOLDER).iterdir()} == before
    assert [p.name for p in train.iterdir()] == [history.FOLDER]
