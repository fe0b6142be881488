import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.core.shop import CUSTOMER_COLUMNS, ORDER_COLUMNS
from pipeline.stages.simulate import export_order, invoice_text, simulate
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


def lines_of(invoice, credit, minutes, product) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice": np.asarray(invoice, dtype=np.int64),
            "credit": np.asarray(credit, dtype=bool),
            "minutes": np.asarray(minutes, dtype=float),
            "product": np.asarray(product, dtype=np.int64),
        }
    )


def test_export_order_sorts_the_invoice_as_text():
    """In one minute: "1000000" < "500000" < "5000000" < "500001" < "C500000", as text; then by
    product; a later minute last whatever its invoice."""
    lines = lines_of(
        invoice=[500001, 500000, 5000000, 1000000, 500000, 500000, 500000, 1],
        credit=[False, True, False, False, False, False, False, False],
        minutes=[10, 10, 10, 10, 10, 10, 10, 11],
        product=[1, 1, 1, 1, 7, 3, 3, 1],
    )
    ordered = lines.iloc[export_order(lines)]
    assert invoice_text(ordered).to_pylist() == [
        "1000000", "500000", "500000", "500000", "5000000", "500001", "C500000", "1",
    ]  # fmt: skip
    # equal keys keep their order: the two (500000, product 3) lines are rows 5 then 6
    assert ordered.index.tolist() == [3, 5, 6, 4, 2, 0, 1, 7]


# numbers that are prefixes of others, so that padding ties and the length decides, and any others
INVOICES = st.one_of(
    st.sampled_from([1, 10, 100, 5, 50, 500, 501, 51, 5000000, 123, 1230]), st.integers(1, 10**12)
)


@given(
    st.lists(
        st.tuples(INVOICES, st.booleans(), st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40
    )
)
def test_export_order_is_the_order_of_the_text(rows):
    invoice, credit, minutes, product = zip(*rows, strict=True)
    lines = lines_of(invoice, credit, minutes, product)
    text = lines.assign(text=invoice_text(lines).to_pylist())
    expected = text.sort_values(["minutes", "text", "product"], kind="stable").index.to_numpy()
    np.testing.assert_array_equal(export_order(lines), expected)
