"""Public data sets mapped onto the transactions contract. `churn data download online-retail-ii`
fetches the UCI Online Retail II workbook and writes it as one CSV that the documented mapping
reads; the conversion is separate from the download so it is tested on a small local file."""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd
import yaml

from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path

log = logging.getLogger(__name__)

ONLINE_RETAIL_II_URL = "https://archive.ics.uci.edu/static/public/502/online+retail+ii.zip"
ONLINE_RETAIL_II_COLUMNS = [
    "Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country",
]  # fmt: skip
# params.yaml `ingest` section for the CSV this module writes
ONLINE_RETAIL_II_MAPPING = {
    "columns": {
        "customer_id": "Customer ID",
        "order_ts": "InvoiceDate",
        "order_id": "Invoice",
        "product_id": "StockCode",
        "quantity": "Quantity",
        "unit_price": "Price",
        "country": "Country",
    },
    "date_formats": ["%Y-%m-%d %H:%M:%S"],
}


class DataError(PipelineError):
    """A downloaded file is not in the expected format."""


def _workbook(archive: Path) -> Path:
    """The .xlsx inside the UCI archive (the archive may also hold it one level down)."""
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if n.lower().endswith(".xlsx")]
        if not names:
            raise DataError(f"{archive}: no .xlsx workbook inside; found {zf.namelist()}")
        target = Path(tempfile.mkdtemp()) / Path(names[0]).name
        with zf.open(names[0]) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return target


def convert_online_retail_ii(archive: Path, out_csv: Path) -> int:
    """Both yearly sheets of the workbook as one CSV, in file order; ids stay text (the workbook
    stores them as numbers, so 13085 becomes '13085', not '13085.0'). Returns the row count."""
    workbook = _workbook(archive)
    try:
        sheets = pd.read_excel(workbook, sheet_name=None, dtype={"Invoice": str, "StockCode": str})
    finally:
        shutil.rmtree(workbook.parent, ignore_errors=True)
    frames = []
    for name, sheet in sheets.items():
        missing = [c for c in ONLINE_RETAIL_II_COLUMNS if c not in sheet.columns]
        if missing:
            raise DataError(f"{archive}: sheet {name!r} lacks column(s) {missing}")
        frames.append(sheet[ONLINE_RETAIL_II_COLUMNS])
    data = pd.concat(frames, ignore_index=True)
    ids = pd.to_numeric(data["Customer ID"], errors="coerce")
    data["Customer ID"] = ids.map(lambda v: "" if pd.isna(v) else str(int(v)))
    data["InvoiceDate"] = pd.to_datetime(data["InvoiceDate"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    with atomic_path(out_csv) as tmp:
        data.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    return len(data)


def download_online_retail_ii(out_csv: Path, url: str = ONLINE_RETAIL_II_URL) -> int:
    """Fetch the public archive (about 45 MB) and convert it. Needs internet access."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "online_retail_ii.zip"
        log.info("downloading %s", url)
        with urllib.request.urlopen(url, timeout=120) as response, archive.open("wb") as dst:
            shutil.copyfileobj(response, dst)
        return convert_online_retail_ii(archive, out_csv)


def main(name: str, out: Path) -> str:
    """`churn data download`: fetch the data set and say how to map it."""
    if name != "online-retail-ii":
        raise DataError(f"unknown data set {name!r}; available: online-retail-ii")
    rows = download_online_retail_ii(out)
    mapping = yaml.safe_dump({"ingest": ONLINE_RETAIL_II_MAPPING}, sort_keys=False)
    return f"{out}: {rows} rows. Map it with this params.yaml ingest section:\n{mapping}"
