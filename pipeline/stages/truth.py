"""Stage truth: the simulated shop's oracle at the cutoffs featurize used.

Reads the simulator's latent state (customers.parquet, orders.parquet) and featurize's fits.json,
and writes the truth (see `core/oracle.py`) at the latest `simulate.truth_cutoffs` cutoffs of the
schedule and at the scoring date, over the schedule's horizon and eligibility lookback. So when
featurize adapts the schedule to the history, or an experiment changes the horizon, the oracle
follows: evaluate compares it with the model on the same rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core.io import write_parquet
from pipeline.core.oracle import truth_at
from pipeline.core.records import Fits, read_record
from pipeline.core.shop import read_shop

log = logging.getLogger(__name__)


def main(
    params_path: Path, customers_path: Path, orders_path: Path, fits_path: Path, truth_path: Path
) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    fits = read_record(fits_path, Fits)
    shop = read_shop(params.simulate, customers_path, orders_path)
    cutoffs = [*fits.cutoffs[-params.simulate.truth_cutoffs :], fits.score_date]
    truth = truth_at(
        shop,
        cutoffs=cutoffs,
        horizon=fits.schedule.horizon_days,
        lookback=fits.schedule.eligibility_lookback_days,
    )
    write_parquet(truth, truth_path)
    log.info(
        "truth for %d customer-cutoffs at %s over %d days",
        len(truth),
        ", ".join(c.isoformat() for c in cutoffs),
        fits.schedule.horizon_days,
    )
