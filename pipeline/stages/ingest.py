"""Stage ingest: a raw CSV or Parquet export + the column mapping -> validated transactions and a
quarantine of rejected rows, each with its reason. Input rows = kept + quarantined, always.

The export is read in batches and each batch is parsed by one DuckDB query, so memory stays bounded
whatever the file size; the outputs appear only when the whole file has passed.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import logging
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.core.errors import PipelineError
from pipeline.core.io import (
    atomic_path,
    parquet_options,
    permissions_of,
    prefetched,
    write_headline,
    write_json,
)
from pipeline.core.params import IngestParams
from pipeline.core.privacy import pseudonym_key, pseudonyms
from pipeline.core.tables import OPTIONAL_TYPES, TRANSACTIONS, validate

log = logging.getLogger(__name__)

BATCH_BYTES = 32 << 20
SHOW_ROWS = 5
STAGED_ROW_GROUP = 65_536  # small row groups let the checks across rows work within a small memory limit


class IngestError(PipelineError):
    """The export cannot be ingested; the message names the file, column and rows."""


@dataclass(frozen=True)
class Rule:
    """A row is quarantined with `reason` when `failed` (SQL over parsed columns) holds."""

    reason: str
    column: str
    failed: str


@dataclass
class Tally:
    input_rows: int = 0
    kept_rows: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    @property
    def quarantined_rows(self) -> int:
        return sum(self.by_reason.values())

    def as_metrics(self) -> dict[str, object]:
        if self.input_rows != self.kept_rows + self.quarantined_rows:  # nothing may be lost
            raise IngestError(
                f"{self.input_rows} rows read but {self.kept_rows} kept + {self.quarantined_rows} quarantined"
            )
        return {
            "input_rows": self.input_rows,
            "kept_rows": self.kept_rows,
            "quarantined_rows": self.quarantined_rows,
            "quarantine_share": round(self.quarantined_rows / max(self.input_rows, 1), 6),
            "quarantined_by_reason": dict(sorted(self.by_reason.items())),
        }


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


# what exports write for "no value" in an id column: such ids are missing, not a customer
MISSING_ID_TOKENS = ("nan", "null", "none", "n/a", "na", "#n/a", "undefined")


def _timestamp(text: str, params: IngestParams) -> str:
    """Naive formats give wall-clock time as written; formats with a UTC offset (%z) give the
    instant's wall-clock time in `ingest.timezone`."""
    naive = [f for f in params.date_formats if "%z" not in f]
    zoned = [f for f in params.date_formats if "%z" in f]
    parts = [f"try_strptime({text}, {_sql_list(naive)})"] if naive else []
    if zoned:
        zone = str(params.timezone).replace("'", "''")
        parts.append(f"timezone('{zone}', try_strptime({text}, {_sql_list(zoned)}))")
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"


# a number written with a decimal comma: optional sign, digits in groups of three separated by "."
# or none, then an optional ",fraction". Anything else with a "." is ambiguous and not a number.
DECIMAL_COMMA = r"^[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)(,[0-9]+)?$"


def _number(text: str, decimal: str) -> str:
    if decimal == ".":
        return f"TRY_CAST({text} AS DOUBLE)"
    return (
        f"CASE WHEN regexp_matches({text}, '{DECIMAL_COMMA}') "
        f"THEN TRY_CAST(replace(replace({text}, '.', ''), ',', '.') AS DOUBLE) END"
    )


def parse_expressions(params: IngestParams, schema: pa.Schema) -> dict[str, str]:
    """SQL expression for each canonical column present, from the mapped source column."""
    exprs: dict[str, str] = {}
    for target, source in params.columns.items():
        col = _quote(source)
        kind = schema.field(source).type
        text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
        if target == "customer_id":
            tokens = _sql_list(list(MISSING_ID_TOKENS)).strip("[]")
            exprs[target] = f"CASE WHEN lower({text}) IN ({tokens}) THEN NULL ELSE {text} END"
        elif target == "order_ts":
            exprs[target] = (
                f"CAST({col} AS TIMESTAMP)"
                if pa.types.is_timestamp(kind) or pa.types.is_date(kind)
                else _timestamp(text, params)
            )
        elif target in ("amount", "quantity", "unit_price"):
            exprs[target] = _number(text, params.decimal)
        else:
            exprs[target] = text
    if "amount" not in exprs:
        exprs["amount"] = "quantity * unit_price"
    return exprs


def quarantine_rules(params: IngestParams, today: dt.date) -> list[Rule]:
    """Checks in the order they are applied; the first that fails names the row's reason."""
    # a line break, tab or NUL inside an id or a date is a broken export, never part of a value
    rules = [
        Rule(
            f"control_character_{target}",
            target,
            f"regexp_matches({_quote('raw:' + params.columns[target])}, '[\\x00-\\x1f\\x7f]')",
        )
        for target in ("customer_id", "order_ts")
    ]
    rules += [
        Rule("missing_customer_id", "customer_id", "customer_id IS NULL"),
        Rule("unparseable_order_ts", "order_ts", "order_ts IS NULL"),
    ]
    for name in ("quantity", "unit_price", "amount"):
        if name in params.columns:
            rules.append(Rule(f"non_numeric_{name}", name, f"{name} IS NULL"))
    if "unit_price" in params.columns:
        rules.append(Rule("negative_unit_price", "unit_price", "unit_price < 0"))
    valid_until = params.valid_until or today  # the caller's date, never the clock read here
    rules += [
        Rule("missing_amount", "amount", "amount IS NULL"),
        Rule("non_finite_amount", "amount", "NOT isfinite(amount)"),
        Rule("zero_amount", "amount", "amount = 0"),
        Rule("absurd_amount", "amount", f"abs(amount) > {params.max_abs_amount!r}"),
        Rule("before_valid_from", "order_ts", f"order_ts < TIMESTAMP '{params.valid_from.isoformat()}'"),
        Rule(
            "future_order_ts",
            "order_ts",
            f"order_ts >= TIMESTAMP '{(valid_until + dt.timedelta(days=1)).isoformat()}'",
        ),
    ]
    return rules


# checks across rows, after every row passed the rules above: (reason, column, SQL over `staged`)
CROSS_ROW_RULES = (
    # the same line twice: every canonical value equal (after trimming and parsing); the first stays
    ("duplicate_line", "customer_id", "row_number() OVER (PARTITION BY {canonical} ORDER BY source_row) > 1"),
    # a return or cancellation with no earlier (or simultaneous) order of the same customer
    (
        "unmatched_return",
        "amount",
        "amount < 0 AND coalesce(min(CASE WHEN amount > 0 THEN order_ts END) "
        "OVER (PARTITION BY customer_id), TIMESTAMP '9999-12-31') > order_ts",
    ),
)


def batch_query(params: IngestParams, schema: pa.Schema, today: dt.date) -> str:
    exprs = parse_expressions(params, schema)
    rules = quarantine_rules(params, today)
    reason = "CASE " + " ".join(f"WHEN {r.failed} THEN '{r.reason}'" for r in rules) + " END"
    canonical = ["customer_id", "order_ts", "amount", *(c for c in OPTIONAL_TYPES if c in exprs)]
    derived = "amount" not in params.columns
    inner = ", ".join(
        f"{expr} AS {name}" for name, expr in exprs.items() if not (derived and name == "amount")
    )
    raw = ", ".join(f"CAST({_quote(c)} AS VARCHAR) AS {_quote('raw:' + c)}" for c in schema.names)
    amount = f", {exprs['amount']} AS amount" if derived else ""
    return f"""
        WITH parsed AS (SELECT source_row, {inner}, {raw} FROM batch),
        typed AS (SELECT *{amount} FROM parsed)
        SELECT source_row, {", ".join(canonical)}, {reason} AS reason,
               {", ".join(_quote("raw:" + c) for c in schema.names)}
        FROM typed
    """


def _text_encoding(encoding: str) -> str:
    """The encoding to decode with: a UTF-8 byte order mark is not part of the first column's name."""
    return "utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding


def _read_header(path: Path, encoding: str, delimiter: str) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        header = next(csv.reader([first.decode(_text_encoding(encoding))], delimiter=delimiter))
    except UnicodeDecodeError as exc:
        raise IngestError(
            f"{path}: the header is not {encoding} text ({exc.reason} at byte {exc.start}); "
            "set ingest.encoding to the file's encoding (e.g. cp1252)"
        ) from None
    except StopIteration:
        header = []
    if not header:
        raise IngestError(f"{path}: the file is empty; expected a header row and data rows")
    return header


def first_undecodable(path: Path, encoding: str) -> tuple[int, int] | None:
    """(line number, byte offset) of the first byte sequence that is not valid `encoding`."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, offset = 1, 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            pending = decoder.getstate()[0]  # an unfinished character from the previous chunk
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                return line + data[: exc.start].count(b"\n"), offset - len(pending) + exc.start
            line += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return line, offset
    return None


def _csv_error(path: Path, encoding: str, exc: Exception) -> IngestError:
    where = (
        first_undecodable(path, encoding)
        if "UTF8" in str(exc) or isinstance(exc, UnicodeDecodeError)
        else None
    )
    if where:
        line, offset = where
        return IngestError(
            f"{path}: line {line} (data row {line - 1}, byte {offset}) is not valid {encoding} text; "
            "set ingest.encoding to the file's encoding (e.g. cp1252) or fix the row"
        )
    return IngestError(f"{path}: cannot read the CSV: {exc}")


@dataclass
class RaggedRows:
    """Rows whose number of fields differs from the header's, as the CSV reader skipped them."""

    texts: list[str] = field(default_factory=list)

    def skip(self, row: pacsv.InvalidRow) -> str:
        self.texts.append(row.text)
        return "skip"


def read_batches(
    path: Path, params: IngestParams, ragged: RaggedRows | None = None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The export's schema and its rows in batches: CSV columns all as text, Parquet as typed. A
    CSV row with the wrong number of fields is left out of the batches and noted in `ragged`."""
    if path.suffix.lower() in (".parquet", ".pq"):
        source = pq.ParquetFile(path)
        return source.schema_arrow, source.iter_batches(batch_size=256_000)
    header = _read_header(path, params.encoding, params.delimiter)
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise IngestError(f"{path}: header repeats column(s) {repeated}")
    schema = pa.schema([(name, pa.string()) for name in header])
    ragged = ragged if ragged is not None else RaggedRows()
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BATCH_BYTES, encoding=params.encoding),
            parse_options=pacsv.ParseOptions(delimiter=params.delimiter, invalid_row_handler=ragged.skip),
            convert_options=pacsv.ConvertOptions(
                column_types=dict(zip(schema.names, schema.types, strict=True)),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _csv_error(path, params.encoding, exc) from None

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from reader
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise _csv_error(path, params.encoding, exc) from None

    return schema, batches()


@dataclass(frozen=True)
class RaggedRow:
    row: int  # position among the data rows, as `source_row`
    line: int  # physical line of the file where the row starts (the header is line 1)
    fields: list[str]
    text: str


def locate_ragged_rows(path: Path, params: IngestParams, n_fields: int) -> list[RaggedRow]:
    """Every data row whose number of fields is not `n_fields`, with its row and line number.
    pyarrow's streaming reader skips such rows without saying where they were, so when it has
    skipped any, the file is read once more by Python's csv module, which counts lines. Blank
    lines are not rows, for either reader."""
    found, row, line = [], 0, 1
    with path.open(encoding=_text_encoding(params.encoding), newline="") as handle:
        reader = csv.reader((text.replace("\0", "\ufffd") for text in handle), delimiter=params.delimiter)
        next(reader, None)  # the header
        line = reader.line_num
        for fields in reader:
            start, line = line + 1, reader.line_num
            if not fields:
                continue
            row += 1
            if len(fields) != n_fields:
                text = params.delimiter.join(fields)
                found.append(RaggedRow(row=row, line=start, fields=fields, text=text))
    return found


def row_numbers(parsed_rows: pa.Array | range, ragged: list[RaggedRow]) -> pa.Array:
    """`source_row` of the rows the reader kept, numbered 1, 2, ... among themselves, once the
    skipped rows take their places back: the k-th kept row moves down by the number of skipped
    rows before it. With u_j = row_j - j for the j-th skipped row (0-based), that number is
    #{j: u_j <= k}."""
    kept = np.asarray(parsed_rows, dtype=np.int64)
    if not ragged:
        return pa.array(kept)
    thresholds = np.array([r.row - j for j, r in enumerate(ragged)], dtype=np.int64)
    return pa.array(kept + np.searchsorted(thresholds, kept, side="right"))


DELIMITERS = (",", ";", "\t", "|")


def check_mapping(path: Path, params: IngestParams, schema: pa.Schema) -> None:
    missing = {t: s for t, s in params.columns.items() if s not in schema.names}
    if missing and len(schema.names) == 1:
        for other in (d for d in DELIMITERS if d != params.delimiter):
            if set(params.columns.values()) <= set(schema.names[0].split(other)):
                raise IngestError(
                    f"{path}: the header is one column, {schema.names[0]!r}, holding the mapped names "
                    f"separated by {other!r}: set ingest.delimiter: {other!r} in params.yaml"
                    + ("" if other != ";" else " (and ingest.decimal: ',' if amounts are written 11,77)")
                )
    if missing:
        wanted = ", ".join(f"{s!r} (for {t})" for t, s in missing.items())
        raise IngestError(
            f"{path}: column(s) {wanted} named in ingest.columns are not in the file; "
            f"its columns are {schema.names}. Fix the mapping in params.yaml."
        )


# quarantine columns beside the row number, the reason and the raw fields: where a row's fields do
# not line up with the header, its physical line and its text as read
QUARANTINE_EXTRA = (("line", pa.int64()), ("raw_text", pa.string()))


def _with_extra(rejected: pa.Table) -> pa.Table:
    for name, kind in QUARANTINE_EXTRA:
        rejected = rejected.append_column(name, pa.nulls(rejected.num_rows, kind))
    return rejected


def ingest(
    path: Path, params: IngestParams, kept_out: Path, quarantine_out: Path, *, today: dt.date
) -> Tally:
    """Stream the export through the parse query, then apply the checks across rows, into the two
    output files. Both appear together, only when the whole file passed. Rows with the wrong
    number of fields are quarantined too: when the CSV has any, it is located and streamed again
    so that every row keeps its own number. `today` is the date the export is checked as of: with
    `ingest.valid_until` null, orders after it are quarantined as future."""
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty; expected a header row and data rows")
    skipped = RaggedRows()
    schema, batches = read_batches(path, params, skipped)
    check_mapping(path, params, schema)
    with atomic_path(kept_out) as kept_tmp, atomic_path(quarantine_out) as quarantine_tmp:
        tally = _stream(
            path=path,
            params=params,
            schema=schema,
            batches=batches,
            ragged=[],
            kept_tmp=kept_tmp,
            quarantine_tmp=quarantine_tmp,
            today=today,
        )
        if skipped.texts:
            ragged = locate_ragged_rows(path, params, len(schema.names))
            if len(ragged) != len(skipped.texts):
                raise IngestError(
                    f"{path}: {len(skipped.texts)} row(s) have a number of fields other than the "
                    f"header's {len(schema.names)}, but a line-by-line read finds {len(ragged)}: the "
                    f"file's quoting is ambiguous. First such row: {skipped.texts[0][:200]!r}"
                )
            _, batches = read_batches(path, params)
            tally = _stream(
                path=path,
                params=params,
                schema=schema,
                batches=batches,
                ragged=ragged,
                kept_tmp=kept_tmp,
                quarantine_tmp=quarantine_tmp,
                today=today,
            )
        _check_quarantine_share(path=path, params=params, tally=tally, today=today)
    return tally


def _ragged_table(ragged: list[RaggedRow], schema: pa.Schema, withhold: bool) -> pa.Table:
    """Quarantine rows for `ragged`: raw fields in the header's order as far as they go (none
    when ids are pseudonymized: a shifted field may be the id), the line and the text."""
    columns: dict[str, pa.Array] = {
        "source_row": pa.array([r.row for r in ragged], pa.int64()),
        "reason": pa.array(["wrong_field_count"] * len(ragged), pa.string()),
    }
    for k, name in enumerate(schema.names):
        values = [None if withhold or k >= len(r.fields) else r.fields[k] for r in ragged]
        columns["raw:" + name] = pa.array(values, pa.string())
    columns["line"] = pa.array([r.line for r in ragged], pa.int64())
    columns["raw_text"] = pa.array([None if withhold else r.text for r in ragged], pa.string())
    return pa.table(columns)


def _stream(
    path: Path,
    params: IngestParams,
    schema: pa.Schema,
    batches: Iterator[pa.RecordBatch],
    ragged: list[RaggedRow],
    kept_tmp: Path,
    quarantine_tmp: Path,
    today: dt.date,
) -> Tally:
    query = batch_query(params, schema, today)
    raw_names = ["raw:" + c for c in schema.names]
    raw_id = "raw:" + params.columns["customer_id"]
    key = pseudonym_key(params.pseudonym_key_env) if params.pseudonymize else None
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="ingest-") as work:
        con = duckdb.connect()
        con.execute("SET threads TO 2")
        con.execute(f"SET memory_limit = '{params.memory_limit}'")
        con.execute(f"SET temp_directory = '{work}'")
        con.execute("SET preserve_insertion_order = false")  # every output is ordered explicitly
        staged_path = Path(work) / "staged.parquet"
        staged_writer: pq.ParquetWriter | None = None
        quarantine_writer: pq.ParquetWriter | None = None

        def checked() -> Iterator[tuple[int, pa.Table, pa.Table]]:
            """Per batch of the file: its rows, the rows that passed the row checks (canonical
            columns and raw values) and the rejected rows with their reason."""
            parsed_rows = 0
            for raw_batch in batches:
                numbers = row_numbers(range(parsed_rows + 1, parsed_rows + raw_batch.num_rows + 1), ragged)
                parsed_rows += raw_batch.num_rows
                batch = pa.Table.from_batches([raw_batch]).append_column("source_row", numbers)
                con.register("batch", batch)
                # two threads return the batch's rows in any order: put them back in the file's
                parsed = con.sql(query).to_arrow_table().sort_by("source_row")
                con.unregister("batch")
                if key is not None:  # ids never leave this loop in clear, not even in the quarantine
                    parsed = _pseudonymized(parsed, key, raw_id)
                is_kept = parsed.column("reason").is_null()
                passed = parsed.filter(is_kept)
                kept = validate(
                    passed.drop_columns(["reason", *raw_names]).to_pandas(),
                    TRANSACTIONS,
                    f"{path} (validated rows)",
                )
                staged = pa.Table.from_pandas(kept, preserve_index=False)
                for name in raw_names:
                    staged = staged.append_column(name, passed.column(name))
                rejected = _with_extra(
                    parsed.filter(pc.invert(is_kept)).select(["source_row", "reason", *raw_names])
                )
                yield raw_batch.num_rows, staged, rejected

        # reading, parsing and checking the next batches on a thread of their own while this one
        # writes (DuckDB and pyarrow release the interpreter)
        for rows, staged, rejected in prefetched(checked()):
            tally.input_rows += rows
            _count_reasons(tally, rejected)
            if staged_writer is None:
                # a working file, read once by the checks across rows: the fast writer options
                staged_writer = pq.ParquetWriter(staged_path, staged.schema, **parquet_options(staged.schema))
                quarantine_writer = pq.ParquetWriter(quarantine_tmp, rejected.schema)
            staged_writer.write_table(staged, row_group_size=STAGED_ROW_GROUP)
            log.info(
                "%s: %d rows read, %d quarantined so far", path.name, tally.input_rows, tally.quarantined_rows
            )
            assert quarantine_writer is not None
            quarantine_writer.write_table(rejected)
        if staged_writer is None or quarantine_writer is None:
            raise IngestError(f"{path}: the file has a header but no data rows")
        if ragged:
            odd = _ragged_table(ragged, schema, withhold=key is not None)
            tally.input_rows += odd.num_rows
            _count_reasons(tally, odd)
            quarantine_writer.write_table(odd)
        staged_writer.close()
        canonical = [c for c in staged_writer.schema.names if not c.startswith("raw:")]
        flagged = cross_row_checks(con=con, staged=staged_path, canonical=canonical, kept_out=kept_tmp)
        tally.kept_rows = tally.input_rows - tally.quarantined_rows - flagged.num_rows
        flagged = _with_extra(flagged.select(["source_row", "reason", *raw_names]))
        _count_reasons(tally, flagged)
        quarantine_writer.write_table(flagged)
        quarantine_writer.close()
        con.close()
    return tally


def _pseudonymized(parsed: pa.Table, key: bytes, raw_id: str) -> pa.Table:
    for name in ("customer_id", raw_id):
        values = parsed.column(name).to_pylist()
        hashed = [
            v if v is None or not str(v).strip() else p
            for v, p in zip(
                values, pseudonyms(key, (str(v).strip() if v else "" for v in values)), strict=True
            )
        ]
        parsed = parsed.set_column(parsed.schema.get_field_index(name), name, pa.array(hashed, pa.string()))
    return parsed


def cross_row_checks(
    con: duckdb.DuckDBPyConnection, staged: Path, canonical: list[str], kept_out: Path
) -> pa.Table:
    """Apply `CROSS_ROW_RULES` to the rows that passed the row checks: write the survivors'
    canonical columns to `kept_out` in source order and return the rest with their reason and raw
    values. Only the keys enter the window functions and DuckDB spills to its temp directory beyond
    `ingest.memory_limit`, so the file's size does not matter."""
    source = f"read_parquet('{staged}')"
    keys = ", ".join(_quote(c) for c in canonical if c != "source_row")
    keyed = f"(SELECT {keys}, source_row FROM {source})"
    # each rule's window over a scan of its own, a row taking the first rule's reason that flags it:
    # the windows over their different partitions in one query took 9.5 s at 10M lines, 5.1 s apart
    rules = {name: _quote("rule:" + name) for name, _, _ in CROSS_ROW_RULES}
    flagged_by = ", ".join(
        f"{rules[name]} AS (SELECT source_row FROM "
        f"(SELECT source_row, ({sql.format(canonical=keys)}) AS flag FROM {keyed}) WHERE flag)"
        for name, _, sql in CROSS_ROW_RULES
    )
    firsts = " UNION ALL ".join(
        f"SELECT source_row, '{name}' AS reason FROM {rules[name]}"
        + "".join(f" ANTI JOIN {rules[earlier]} USING (source_row)" for earlier in list(rules)[:k])
        for k, name in enumerate(rules)
    )
    con.execute(f"CREATE TEMP TABLE flagged AS WITH {flagged_by} {firsts}")
    selected = ", ".join(_quote(c) for c in canonical)
    survivors = f"SELECT {selected} FROM {source} ANTI JOIN flagged USING (source_row) ORDER BY source_row"
    con.execute(f"COPY ({survivors}) TO '{kept_out}' (FORMAT parquet)")
    out = con.sql(
        f"SELECT s.*, f.reason FROM {source} s JOIN flagged f USING (source_row) ORDER BY source_row"
    )
    flagged = out.to_arrow_table()
    con.execute("DROP TABLE flagged")
    return flagged


def _count_reasons(tally: Tally, rejected: pa.Table) -> None:
    if rejected.num_rows == 0:
        return
    frame = rejected.to_pandas()
    raw = [c for c in frame.columns if c.startswith("raw:")]
    for reason, rows in frame.groupby("reason", sort=True):
        tally.by_reason[str(reason)] += len(rows)
        shown = tally.examples.setdefault(str(reason), [])
        for _, row in rows.head(SHOW_ROWS - len(shown)).iterrows():
            if reason == "wrong_field_count":
                text = f"line {row['line']}: {row['raw_text']!r}"
            else:
                text = ", ".join(f"{c[4:]}={row[c]!r}" for c in raw)
            shown.append((int(row["source_row"]), text))


def _check_quarantine_share(path: Path, params: IngestParams, tally: Tally, today: dt.date) -> None:
    share = tally.quarantined_rows / tally.input_rows
    if share <= params.max_quarantine_share:
        return
    lines = [
        f"{path}: {tally.quarantined_rows} of {tally.input_rows} rows ({share:.1%}) fail the transactions "
        f"contract, above ingest.max_quarantine_share = {params.max_quarantine_share:.1%}. "
        "Nothing was written."
    ]
    columns = {r.reason: r.column for r in quarantine_rules(params, today)} | {
        n: c for n, c, _ in CROSS_ROW_RULES
    }
    for reason, count in tally.by_reason.most_common():
        if reason == "wrong_field_count":
            lines.append(
                f"  {reason}: {count} rows whose number of fields is not the header's, with "
                f"ingest.delimiter = {params.delimiter!r}; first rows:"
            )
        else:
            target = columns[reason]
            source = params.columns.get(target, "quantity x unit_price")
            lines.append(f"  {reason}: {count} rows, column {source!r} (mapped to {target}); first rows:")
        lines += [f"    row {row}: {text}" for row, text in tally.examples[reason]]
    if "unparseable_order_ts" in tally.by_reason:
        lines.append(f"  order dates are parsed with ingest.date_formats = {params.date_formats}")
    raise IngestError("\n".join(lines))


def main(
    params_path: Path,
    raw_path: Path,
    kept_out: Path,
    quarantine_out: Path,
    metrics_out: Path,
    headline_out: Path | None = None,
) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path).ingest
    with permissions_of(*[p for p in [Path(raw_path)] if p.exists()]):
        tally = ingest(
            path=raw_path,
            params=params,
            kept_out=kept_out,
            quarantine_out=quarantine_out,
            today=dt.date.today(),
        )
        write_json(tally.as_metrics(), metrics_out)
        write_headline(
            {"rows": tally.kept_rows, "quarantined": tally.quarantined_rows / max(tally.input_rows, 1)},
            headline_out,
        )
    log.info(
        "%s: %d rows in, %d kept, %d quarantined %s",
        raw_path,
        tally.input_rows,
        tally.kept_rows,
        tally.quarantined_rows,
        dict(tally.by_reason),
    )
