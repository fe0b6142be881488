import json
import os
import stat

import pandas as pd
import pytest

from pipeline.core.io import (
    atomic_path,
    csv_bytes,
    directory_mode,
    permissions_of,
    unescape_formulas,
    write_csv,
    write_json,
)


def test_a_failed_write_leaves_the_previous_output_and_no_temporary_file(tmp_path):
    out = tmp_path / "scores.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_a_temporary_file_left_by_a_killed_writer_is_removed_by_the_next_one(tmp_path):
    stale = tmp_path / ".scores.csv.tmp-99999"
    stale.write_text("half")
    write_csv(pd.DataFrame({"a": [1]}), tmp_path / "scores.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_outputs_get_no_permission_bit_their_inputs_lack(tmp_path):
    source = tmp_path / "export.csv"
    source.write_text("x\n")
    source.chmod(0o640)
    old = os.umask(0o022)
    try:
        with permissions_of(source):
            write_csv(pd.DataFrame({"a": [1]}), tmp_path / "out" / "derived.csv")
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "free.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out" / "derived.csv").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "free.csv").stat().st_mode) == 0o644  # the ceiling is restored


def test_a_folders_mode_lets_its_owner_in_and_others_only_where_they_may_read():
    assert directory_mode(0o600) == 0o700
    assert directory_mode(0o640) == 0o750
    assert directory_mode(0o666) == 0o777


def test_csv_bytes_escape_formulas_and_keep_full_precision():
    frame = pd.DataFrame({"id": ["=1+1", "x", "-3"], "p": [0.1 + 0.2, None, 2.0]})
    assert csv_bytes(frame) == b"id,p\n'=1+1,0.30000000000000004\nx,\n'-3,2.0\n"
    back = pd.Series(["'=1+1", "x", "'-3", "'plain"])
    assert unescape_formulas(back).tolist() == ["=1+1", "x", "-3", "'plain"]


def test_json_is_written_sorted_and_indented(tmp_path):
    write_json({"b": 1, "a": {"d": 2, "c": [1, 2]}}, tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    assert text == json.dumps({"a": {"c": [1, 2], "d": 2}, "b": 1}, indent=2) + "\n"


def test_a_table_streamed_in_pieces_is_byte_identical_to_the_whole_written_at_once(tmp_path, monkeypatch):
    import pandas as pd

    from pipeline.core import io

    monkeypatch.setattr(io, "ROW_GROUP_ROWS", 4)  # small row groups, so pieces straddle them
    whole = pd.DataFrame({"id": [f"c{i}" for i in range(10)], "x": [i / 3 for i in range(10)]})
    io.write_parquet(whole, tmp_path / "whole.parquet")
    import pyarrow.parquet as pq

    written: list[int] = []

    class Spy(pq.ParquetWriter):
        def write_table(self, table, *args, **kwargs):
            written.append(len(table))
            super().write_table(table, *args, **kwargs)

    monkeypatch.setattr(io.pq, "ParquetWriter", Spy)
    with io.parquet_stream(tmp_path / "pieces.parquet") as write:
        for start, stop in ((0, 3), (3, 3), (3, 9), (9, 10)):
            write(whole.iloc[start:stop])
    # each full row group goes out as soon as it is complete: never more than one is held
    assert written == [4, 4, 2]
    assert (tmp_path / "pieces.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(tmp_path / "pieces.parquet").metadata.num_row_groups == 3


def test_a_stream_that_fails_leaves_no_file(tmp_path):
    import pandas as pd
    import pytest

    from pipeline.core.io import parquet_stream

    with pytest.raises(RuntimeError), parquet_stream(tmp_path / "out.parquet") as write:
        write(pd.DataFrame({"x": [1.0]}))
        raise RuntimeError("the query failed halfway")
    assert list(tmp_path.iterdir()) == []


def test_read_parquet_gives_the_frame_pandas_gives(tmp_path):
    import numpy as np
    import pandas as pd

    from pipeline.core.io import read_parquet, write_parquet

    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "cutoff": pd.to_datetime(["2024-01-01"] * 3).astype("datetime64[us]"),
            "horizon_days": np.int32(90),
            "gap_std": [1.5, np.nan, 2.0],
            "country": ["UK", None, "FR"],
            "churned": np.array([1, 0, 1], dtype="int8"),
        }
    )
    write_parquet(frame, tmp_path / "t.parquet")
    read = read_parquet(tmp_path / "t.parquet")
    assert read.equals(pd.read_parquet(tmp_path / "t.parquet")) and (read.dtypes == frame.dtypes).all()
    assert read_parquet(tmp_path / "t.parquet", columns=["churned"]).columns.tolist() == ["churned"]


def test_parquet_files_are_lz4_with_dictionaries_only_for_columns_that_are_not_floats(tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    from pipeline.core.io import parquet_stream, write_parquet

    frame = pd.DataFrame(
        {"customer_id": ["a", "b"], "n_orders": np.array([1, 2], dtype="int32"), "p": [0.25, 0.5]}
    )
    write_parquet(frame, tmp_path / "whole.parquet")
    with parquet_stream(tmp_path / "pieces.parquet") as write:
        write(frame)
    for name in ("whole.parquet", "pieces.parquet"):
        group = pq.ParquetFile(tmp_path / name).metadata.row_group(0)
        chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
        # pyarrow names the LZ4_RAW codec it writes "LZ4" (DuckDB's parquet_metadata says LZ4_RAW)
        assert {c.compression for c in chunks.values()} == {"LZ4"}
        dictionary = {n: "RLE_DICTIONARY" in c.encodings for n, c in chunks.items()}
        assert dictionary == {"customer_id": True, "n_orders": True, "p": False}


def test_prefetched_gives_every_item_in_order_from_a_thread_of_its_own():
    import threading

    from pipeline.core.io import prefetched

    threads = []

    def items():
        for i in range(50):
            threads.append(threading.current_thread())
            yield i

    assert list(prefetched(items(), depth=3)) == list(range(50))
    assert threading.main_thread() not in threads


def test_prefetched_raises_the_producers_error_in_its_place():
    from pipeline.core.io import prefetched

    def items():
        yield 1
        yield 2
        raise ValueError("the query failed")

    got = []
    with pytest.raises(ValueError, match="the query failed"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1, 2]


def test_prefetched_stops_its_producer_when_the_consumer_stops():
    import threading

    from pipeline.core.io import prefetched

    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    before = threading.active_count()
    with pytest.raises(RuntimeError):
        for item in prefetched(items(), depth=2):
            if item == 3:
                raise RuntimeError("the disk is full")
    # the producer ran at most its queue's depth and the item it held ahead of the consumer
    assert len(produced) <= 3 + 1 + 2 + 1
    assert threading.active_count() == before


def test_prefetched_closes_its_producing_generator_on_the_producers_thread():
    import threading

    from pipeline.core.io import prefetched

    closed_on = []

    def items():
        try:
            yield from range(100)
        finally:
            closed_on.append(threading.current_thread())

    with pytest.raises(RuntimeError):
        for item in prefetched(items()):
            if item == 2:
                raise RuntimeError("the consumer failed")
    # closed before prefetched returned, where it ran, not left to the garbage collector
    assert len(closed_on) == 1 and closed_on[0] is not threading.main_thread()
