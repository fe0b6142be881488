import datetime as dt

import numpy as np
import pandas as pd

from pipeline.core.shop import BEYOND_DAYS, Calendar, calendars, read_shop
from pipeline.stages.simulate import simulate
from tests.conftest import SMALL_SHOP


def test_calendar_scales_to_mean_one_over_the_days_asked():
    cal = Calendar.of(dt.date(2024, 1, 1), np.array([1.0, 3.0, 2.0, 10.0]), mean_over_days=2)
    np.testing.assert_allclose(cal.rate, [0.5, 1.5, 1.0, 5.0])
    np.testing.assert_allclose(cal.cum, [0.0, 0.5, 2.0, 3.0, 8.0])
    np.testing.assert_allclose(cal.integral(np.array([0.5, 1.5, 3.25])), [0.25, 1.25, 4.25])
    np.testing.assert_allclose(cal.inverse(np.array([0.25, 1.25, 4.25])), [0.5, 1.5, 3.25])
    whole = Calendar.of(dt.date(2024, 1, 1), np.array([1.0, 3.0]))
    np.testing.assert_allclose(whole.rate, [0.5, 1.5])


def test_the_calendars_depend_on_the_export_window_only():
    """Mean 1 over the export window and BEYOND_DAYS past its end: a shop simulated with the same
    params always draws from the same calendar, whatever horizon its truth is asked for later."""
    for scenario in ("retail", "seasonal"):
        p = SMALL_SHOP.model_copy(update={"scenario": scenario})
        n_days = (p.end_date - p.start_date).days
        cal, dcal = calendars(p)
        assert cal.rate.size == dcal.rate.size == n_days + BEYOND_DAYS
        assert abs(cal.rate[:n_days].mean() - 1) < 1e-12
        assert abs(dcal.rate[:n_days].mean() - 1) < 1e-12
    flat = calendars(SMALL_SHOP)[1]
    np.testing.assert_array_equal(flat.rate, np.ones_like(flat.rate))  # retail: no dropout season


def test_the_latent_state_reads_back_as_written(tmp_path):
    _, shop = simulate(SMALL_SHOP)
    shop.customers.to_parquet(tmp_path / "customers.parquet")
    shop.orders.to_parquet(tmp_path / "orders.parquet")
    back = read_shop(SMALL_SHOP, tmp_path / "customers.parquet", tmp_path / "orders.parquet")
    pd.testing.assert_frame_equal(back.customers, shop.customers)
    pd.testing.assert_frame_equal(back.orders, shop.orders)
    assert back.params == SMALL_SHOP
