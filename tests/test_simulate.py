import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.core.shop import CUSTOMER_COLUMNS, ORDER_COLUMNS
from pipeline.stages.simulate import simulate
from tests.conftest import SMALL_SHOP as SMALL


def test_same_seed_same_export_and_latent_state():
    raw_a, shop_a = simulate(SMALL)
    raw_b, shop_b = simulate(SMALL)
    assert raw_a.equals(raw_b)
    pd.testing.assert_frame_equal(shop_a.customers, shop_b.customers)
    pd.testing.assert_frame_equal(shop_a.orders, shop_b.orders)
    assert list(shop_a.customers.columns) == CUSTOMER_COLUMNS
    assert list(shop_a.orders.columns) == ORDER_COLUMNS
    assert len(shop_a.customers) == 400
    assert shop_a.customers["customer_id"].str.fullmatch(r"\d{6}").all()


def test_the_latent_orders_are_the_exports_orders():
    """Each order of the clean stream is one invoice of its customer in the export, on its day;
    the damaged rows (no customer) are the only ones that cannot be traced."""
    raw, shop = simulate(SMALL.model_copy(update={"malformed_share": 0.0}))
    export = raw.to_pandas()
    sales = export[~export["Invoice"].str.startswith("C")]
    invoices = sales.drop_duplicates("Invoice")
    per_customer = invoices.groupby("Customer ID").size().sort_index()
    latent = shop.orders.groupby("customer_id").size().sort_index()
    pd.testing.assert_series_equal(per_customer, latent, check_names=False)
    days = (
        pd.to_datetime(invoices["InvoiceDate"], format="%d/%m/%Y %H:%M") - pd.Timestamp(SMALL.start_date)
    ).dt.days
    assert sorted(days) == sorted(np.floor(shop.orders["t"]).astype(int))
    # the returns seen in the export are the orders with a return time before the export's end
    end_minute = (SMALL.end_date - SMALL.start_date).days * 1440
    returned = (shop.orders["return_minute"] < end_minute).sum()
    assert export["Invoice"].str.startswith("C").sum() == returned


def test_export_has_returns_and_damaged_rows():
    raw, _ = simulate(SMALL)
    frame = raw.to_pandas()
    assert frame["Invoice"].str.startswith("C").any()
    assert (frame["Customer ID"] == "").sum() > 0
    assert (frame["Price"] == "n/a").sum() > 0
    assert frame.shape[1] == 9


@pytest.mark.parametrize("share", [0.0])
def test_no_damage_when_share_is_zero(share):
    raw, _ = simulate(SMALL.model_copy(update={"malformed_share": share}))
    frame = raw.to_pandas()
    assert (frame["Customer ID"] != "").all()
    assert (frame["Quantity"] != "").all()


def test_scenarios_differ_as_described():
    """Each scenario shows its mechanism in the export it writes."""
    base = SMALL.model_copy(update={"n_customers": 3000})
    exports = {
        name: simulate(base.model_copy(update={"scenario": name}))[0]
        for name in ("retail", "one_time", "grocery")
    }
    orders = {
        name: raw.to_pandas().query("Invoice.str.match(r'^\\d')").groupby("Customer ID")["Invoice"].nunique()
        for name, raw in exports.items()
    }
    # most one_time customers buy once; grocery customers buy far more often than retail ones
    assert (orders["one_time"] == 1).mean() > 0.7 > (orders["retail"] == 1).mean()
    assert orders["grocery"].median() > 3 * orders["retail"].median()


def test_damage_changes_one_cell_of_each_drawn_row_to_a_known_bad_value_and_nothing_else():
    from pipeline.stages.simulate import DAMAGE, RAW_COLUMNS, corrupt

    n = 400
    table = pa.table({name: [f"{name}-{i}" for i in range(n)] for name in RAW_COLUMNS})
    out = corrupt(np.random.default_rng(7), table, share=0.25).to_pydict()
    assert list(out) == RAW_COLUMNS
    changed = {i: [c for c in RAW_COLUMNS if out[c][i] != f"{c}-{i}"] for i in range(n)}
    damaged = {i: cells for i, cells in changed.items() if cells}
    assert all(len(cells) == 1 for cells in damaged.values())
    assert {(cells[0], out[cells[0]][i]) for i, cells in damaged.items()} == set(DAMAGE)
    assert len(damaged) == int((np.random.default_rng(7).random(n) < 0.25).sum()) == 107
