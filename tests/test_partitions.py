"""The training snapshots' folder: keys that follow exactly what a cutoff depends on, a weekly
refresh byte-identical to a full run, and a folder that stays readable whatever happens to a run."""

import datetime as dt
import json
import shutil

import ibis
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core import features
from pipeline.core.cutoffs import SplitNeeds
from pipeline.core.features import write_snapshots
from pipeline.core.io import write_parquet
from pipeline.core.partitions import (
    INDEX,
    Partition,
    SnapshotFolder,
    SnapshotFolderError,
    context_digest,
    line_digests,
    read_snapshots,
    snapshot_files,
)
from tests.conftest import FEATURE_LINES, examples, featurize_params

SPEC = featurize_params(
    horizon_days=30, n_cutoffs=6, eligibility_lookback_days=90, windows_days=[30, 90], btyd_fit_customers=100
)
NEEDS = SplitNeeds(1, 1)
D = dt.date.fromisoformat


def _until(lines: pd.DataFrame, day: str) -> pd.DataFrame:
    return lines[lines["order_ts"] < pd.Timestamp(day)].reset_index(drop=True)


def _files(folder) -> dict[str, bytes]:
    """Every file under `folder`, the carried history's included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _inodes(folder) -> dict[str, int]:
    """The snapshot files' inodes (not the index's or the carried history's)."""
    return {
        p.name: p.stat().st_ino for p in folder.iterdir() if p.name != INDEX and not p.name.startswith(".")
    }


def _run(lines: pd.DataFrame, folder, spec=SPEC):
    return write_snapshots(ibis.memtable(lines), spec, NEEDS, train_out=folder)


def _same_snapshots(a, b) -> None:
    assert a.by_cutoff.equals(b.by_cutoff)
    assert a.btyd_params == b.btyd_params and a.schedule == b.schedule
    pd.testing.assert_frame_equal(a.score, b.score)


CARRIED = "carried history of"


def _carried(caplog) -> list[str]:
    """The scoring dates of the histories the runs since the last call carried on from."""
    found = [
        r.getMessage().split(CARRIED)[1].split(":")[0].strip()
        for r in caplog.records
        if CARRIED in r.getMessage()
    ]
    caplog.clear()
    return found


def test_next_weeks_run_recomputes_only_the_new_cutoff_and_matches_a_full_run_byte_for_byte(
    small_shop, tmp_path, caplog
):
    caplog.set_level("INFO", logger="pipeline.core.features")
    # the shop runs 2024-01-01 .. 2025-01-01; weekly exports end on Mondays
    weekly = tmp_path / "weekly"
    first = _run(_until(small_shop, "2024-11-11"), weekly)
    assert _carried(caplog) == []
    assert [c.isoformat() for c in first.schedule.cutoffs] == [
        "2024-07-22", "2024-08-05", "2024-08-19", "2024-09-02", "2024-09-16", "2024-09-30"
    ]  # fmt: skip
    before = _inodes(weekly)
    # a week later 10-14's label window (30 days) has closed: it is added and 07-22 dropped; the
    # other five are the same files
    later = _run(_until(small_shop, "2024-11-18"), weekly)
    # only the week's lines were aggregated, on top of the history carried from last week's run
    assert _carried(caplog) == ["2024-11-11"]
    assert later.schedule.cutoffs == [*first.schedule.cutoffs[1:], D("2024-10-14")]
    after = _inodes(weekly)
    kept = {n: i for n, i in after.items() if not n.startswith("2024-10-14")}
    assert len(kept) == 5 and kept.items() <= before.items()
    assert not any(n.startswith("2024-07-22") for n in after)
    # another week on, the last closed window on the 14-day grid is still 10-14's: nothing new
    latest = _run(_until(small_shop, "2024-11-25"), weekly)
    assert _carried(caplog) == ["2024-11-18"]
    assert latest.schedule.cutoffs == later.schedule.cutoffs and _inodes(weekly) == after
    # a full run on the same lines in an empty folder gives the same bytes, the index and the
    # carried history included: a chain of weekly runs never drifts from a full run
    full = _run(_until(small_shop, "2024-11-25"), tmp_path / "full")
    assert _files(weekly) == _files(tmp_path / "full")
    _same_snapshots(latest, full)
    assert read_snapshots(weekly).equals(read_snapshots(tmp_path / "full"))


def test_a_late_line_invalidates_exactly_the_cutoffs_whose_window_reaches_it(small_shop, tmp_path, caplog):
    lines = _until(small_shop, "2024-11-25")
    folder = tmp_path / "weekly"
    snaps = _run(lines, folder)
    before = _inodes(folder)
    # an order of 2024-09-20 arrives late: the cutoffs whose 30-day label window closed by then
    # (08-05 and 08-19) keep their files; from 09-02 on the features or the label may change
    late = lines.iloc[[0]].assign(
        source_row=lines["source_row"].max() + 1,
        order_id="late-1",
        order_ts=pd.Timestamp("2024-09-20 09:30"),
    )
    changed = pd.concat([lines, late], ignore_index=True)
    caplog.set_level("INFO", logger="pipeline.core.features")
    caplog.clear()
    _run(changed, folder)
    assert _carried(caplog) == []  # a line before the carried history's date changed
    after = _inodes(folder)
    untouched = [
        c.isoformat() for c in snaps.schedule.cutoffs if c + dt.timedelta(days=30) <= D("2024-09-20")
    ]
    assert untouched == ["2024-08-05", "2024-08-19"]
    assert sorted(n[:10] for n in after if after[n] == before.get(n)) == untouched
    assert len(after) == len(before) == 6
    _run(changed, tmp_path / "full")
    assert _files(folder) == _files(tmp_path / "full")


def test_a_reordered_export_with_new_source_rows_reuses_every_cutoff(small_shop, tmp_path):
    lines = _until(small_shop, "2024-11-25")
    _run(lines, tmp_path / "a")
    before = _files(tmp_path / "a")
    shuffled = lines.sample(frac=1.0, random_state=3).reset_index(drop=True)
    shuffled["source_row"] = range(len(shuffled))
    _run(shuffled, tmp_path / "a")
    assert _files(tmp_path / "a") == before


def test_a_changed_feature_param_recomputes_every_cutoff_and_a_memory_setting_none(small_shop, tmp_path):
    lines = _until(small_shop, "2024-11-25")
    folder = tmp_path / "t"
    _run(lines, folder)
    before = _inodes(folder)
    _run(lines, folder, SPEC.model_copy(update={"memory_limit": "1GB", "n_cutoffs": 6}))
    assert _inodes(folder) == before
    _run(lines, folder, SPEC.model_copy(update={"windows_days": [30, 60]}))
    assert set(_inodes(folder)).isdisjoint(before)
    assert len(_inodes(folder)) == len(before)


def test_a_file_rewritten_without_its_metadata_is_recomputed(small_shop, tmp_path):
    # as an erasure rewrites every table: the next run must not trust its counts
    lines = _until(small_shop, "2024-11-25")
    folder = tmp_path / "t"
    _run(lines, folder)
    whole = _files(folder)
    victim = sorted(p for p in folder.iterdir() if p.name != INDEX)[2]
    write_parquet(pd.read_parquet(victim), victim)
    assert SnapshotFolder(folder).reusable(D(victim.name[:10]), victim.name[11:27]) is None
    _run(lines, folder)
    assert _files(folder) == whole


def test_a_run_killed_before_its_index_leaves_the_earlier_set_readable(small_shop, tmp_path, monkeypatch):
    folder = tmp_path / "t"
    _run(_until(small_shop, "2024-11-11"), folder)
    earlier, earlier_files = read_snapshots(folder), _files(folder)

    def killed(self, partitions):
        raise KeyboardInterrupt

    monkeypatch.setattr(SnapshotFolder, "publish", killed)
    with pytest.raises(KeyboardInterrupt):
        _run(_until(small_shop, "2024-11-18"), folder)
    # the new cutoff's file was written, but the index still lists the earlier set, all there
    assert set(_files(folder)) - set(earlier_files) != set()
    assert read_snapshots(folder).equals(earlier)
    monkeypatch.undo()
    done = _run(_until(small_shop, "2024-11-18"), folder)
    assert len(snapshot_files(folder)) == len(done.schedule.cutoffs)
    assert not any(n.startswith("2024-07-22") for n in _files(folder))


def test_the_folder_is_refused_when_it_is_a_file_or_holds_other_files(tmp_path):
    (tmp_path / "train.parquet").write_bytes(b"PAR1")
    with pytest.raises(SnapshotFolderError, match="a file; the training snapshots are a folder"):
        SnapshotFolder(tmp_path / "train.parquet")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(SnapshotFolderError, match=r"holds \['notes.txt'\], which featurize did not write"):
        SnapshotFolder(tmp_path / "mine")


def test_reading_a_folder_without_an_index_or_with_a_missing_file_says_to_rerun(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    with pytest.raises(SnapshotFolderError, match=r"no index\.json, so featurize never finished here"):
        read_snapshots(folder)
    (folder / INDEX).write_text(json.dumps({"cutoffs": [{"cutoff": "2024-01-01", "file": "x.parquet"}]}))
    with pytest.raises(SnapshotFolderError, match=r"lists \['x.parquet'\], missing from the folder"):
        read_snapshots(folder)
    (folder / INDEX).write_text("[]")
    with pytest.raises(SnapshotFolderError, match="not an index of snapshot files"):
        read_snapshots(folder)


def test_a_single_file_reads_as_itself(tmp_path):
    frame = pd.DataFrame({"customer_id": ["a", "b"], "churned": [1, 0]})
    write_parquet(frame, tmp_path / "one.parquet")
    assert snapshot_files(tmp_path / "one.parquet") == [tmp_path / "one.parquet"]
    assert read_snapshots(tmp_path / "one.parquet").equals(frame)


def test_publish_lists_the_partitions_in_cutoff_order_and_removes_only_stale_partition_files(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    for name in ("2024-01-01.aaaaaaaaaaaaaaaa.parquet", "2024-01-15.bbbbbbbbbbbbbbbb.parquet"):
        (folder / name).write_bytes(b"")
    (folder / ".2024-01-29.cccccccccccccccc.parquet.tmp-1").write_bytes(b"")
    fresh = [
        Partition(cutoff=D("2024-01-15"), key="b" * 16, rows=3, churned=1, btyd={}),
        Partition(cutoff=D("2024-01-08"), key="d" * 16, rows=2, churned=0, btyd={}),
    ]
    (folder / fresh[1].name).write_bytes(b"")
    SnapshotFolder(folder).publish(fresh)
    assert json.loads((folder / INDEX).read_text()) == {
        "cutoffs": [
            {"cutoff": "2024-01-08", "file": "2024-01-08.dddddddddddddddd.parquet", "rows": 2, "churned": 0},
            {"cutoff": "2024-01-15", "file": "2024-01-15.bbbbbbbbbbbbbbbb.parquet", "rows": 3, "churned": 1},
        ]
    }
    assert sorted(p.name for p in folder.iterdir()) == [
        ".2024-01-29.cccccccccccccccc.parquet.tmp-1",
        "2024-01-08.dddddddddddddddd.parquet",
        "2024-01-15.bbbbbbbbbbbbbbbb.parquet",
        INDEX,
    ]


def test_the_context_follows_the_feature_params_and_the_columns_but_not_the_engine_settings():
    base = context_digest(SPEC, ["customer_id", "order_ts"])
    assert base == context_digest(SPEC, ["order_ts", "customer_id"])
    assert base == context_digest(
        SPEC.model_copy(update={"memory_limit": "9GB", "n_cutoffs": 30}), ["customer_id", "order_ts"]
    )
    assert base != context_digest(SPEC.model_copy(update={"trend_days": 60}), ["customer_id", "order_ts"])
    assert base != context_digest(SPEC, ["customer_id", "order_ts", "channel"])
    assert len(base) == 64


BOUNDS = [D("2024-01-01"), D("2024-02-01"), D("2024-03-01"), D("2024-04-01"), D("2024-06-01")]


def _digests(lines: pd.DataFrame) -> list[str]:
    return line_digests(ibis.memtable(lines), BOUNDS)


@settings(max_examples=examples(25), deadline=None)
@given(
    row=st.integers(0, len(FEATURE_LINES) - 1),
    column=st.sampled_from(["amount", "product_id", "order_ts", "customer_id", "quantity"]),
)
def test_a_changed_line_changes_the_digest_of_every_bound_after_it_and_no_other(row, column):
    lines = FEATURE_LINES.copy()
    base = _digests(lines)
    old_ts = lines.at[row, "order_ts"]
    if column == "order_ts":
        lines.at[row, "order_ts"] = old_ts + pd.Timedelta(days=20)
    elif column in ("amount", "quantity"):
        lines.at[row, column] = lines.at[row, column] + 1.5
    else:
        lines.at[row, column] = lines.at[row, column] + "-x"
    changed = _digests(lines)
    new_ts = lines.at[row, "order_ts"]
    for bound, a, b in zip(BOUNDS, base, changed, strict=True):
        seen_before = old_ts < pd.Timestamp(bound)
        seen_after = new_ts < pd.Timestamp(bound)
        assert (a != b) == (seen_before or seen_after), (bound, column)


def test_digests_ignore_the_order_of_lines_and_their_source_rows_but_count_duplicates():
    lines = FEATURE_LINES.copy()
    base = _digests(lines)
    reordered = lines.iloc[::-1].assign(source_row=range(100, 100 + len(lines)))
    assert _digests(reordered) == base
    doubled = pd.concat([lines, lines.iloc[[0]]], ignore_index=True)
    # line 0 is of 2024-01-01 10:00: every bound after that day changes
    assert [a == b for a, b in zip(base, _digests(doubled), strict=True)] == [
        True,
        False,
        False,
        False,
        False,
    ]
    assert len(set(base)) == len(BOUNDS)  # each month between the bounds has a line


def test_piece_and_row_group_sizes_do_not_change_a_partition(small_shop, tmp_path, monkeypatch):
    lines = _until(small_shop, "2024-11-25")
    _run(lines, tmp_path / "whole")
    monkeypatch.setattr(features, "PIECE_ROWS", 7)
    _run(lines, tmp_path / "pieces")
    assert _files(tmp_path / "pieces") == _files(tmp_path / "whole")
    assert pq.ParquetFile(snapshot_files(tmp_path / "whole")[0]).metadata.num_row_groups == 1
    shutil.rmtree(tmp_path / "pieces")


def test_the_latest_cutoffs_read_alone_are_those_rows_of_the_whole_table(small_shop, tmp_path):
    folder = tmp_path / "train"
    _run(small_shop, folder)
    whole = read_snapshots(folder)
    cutoffs = sorted(whole["cutoff"].unique())
    assert len(cutoffs) == 6
    for n in (1, 2):
        expected = whole[whole["cutoff"].isin(cutoffs[-n:])].reset_index(drop=True)
        pd.testing.assert_frame_equal(read_snapshots(folder, latest=n), expected)
        # the same from one file holding every cutoff
        write_parquet(whole, tmp_path / "one.parquet")
        pd.testing.assert_frame_equal(read_snapshots(tmp_path / "one.parquet", latest=n), expected)


def test_a_mask_keeps_those_rows_of_the_whole_table_file_by_file(small_shop, tmp_path):
    folder = tmp_path / "train"
    _run(small_shop, folder)
    whole = read_snapshots(folder)
    assert len(snapshot_files(folder)) == 6
    mask = (np.arange(len(whole)) % 3 == 0) | (whole["cutoff"] == whole["cutoff"].max()).to_numpy()
    expected = whole[mask].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_snapshots(folder, mask=mask), expected)
    write_parquet(whole, tmp_path / "one.parquet")
    pd.testing.assert_frame_equal(read_snapshots(tmp_path / "one.parquet", mask=mask), expected)
    short = f"a mask of {len(whole) - 1} flags for a table of {len(whole)} rows"
    with pytest.raises(ValueError, match=short):
        read_snapshots(folder, mask=mask[1:])


def test_a_piece_that_fails_on_the_query_thread_stops_the_run_and_leaves_no_partial_file(
    small_shop, tmp_path, monkeypatch
):
    lines = _until(small_shop, "2024-11-25")
    folder = tmp_path / "t"
    monkeypatch.setattr(features, "PIECE_ROWS", 7)  # many pieces, so the failure comes mid-stream
    checked = []

    def failing(frame, what):
        checked.append(what)
        if what == "training snapshots" and checked.count(what) == 5:
            raise features.FeatureError("a feature is not finite")

    monkeypatch.setattr(features, "check_finite", failing)
    with pytest.raises(features.FeatureError, match="not finite"):
        _run(lines, folder)
    # raised where the main thread was writing, after the earlier pieces' cutoffs were written
    assert checked.count("training snapshots") == 5
    assert not any(p.name.startswith(".") or p.suffix == ".tmp" for p in folder.rglob("*"))
    with pytest.raises(SnapshotFolderError):
        read_snapshots(folder)
