"""What happened after a score file of the simulated shop, with a known effect of outreach: the
test bed for `churn measure`. Each contacted customer (on the list, not held out) who would have
placed no order in the window is rescued with probability `effect` and orders once."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.commands.measure import read_scores
from pipeline.core.io import write_json, write_parquet
from pipeline.core.tables import TRANSACTIONS, validate

log = logging.getLogger(__name__)


def followup(
    customers: pd.DataFrame, scores: pd.DataFrame, effect: float, seed: int
) -> tuple[pd.DataFrame, dict]:
    """Orders of the scored customers in the window after a score file, with a known effect of
    outreach: each contacted customer (on the list, not held out) who would have placed no order in
    the window is rescued with probability `effect` and orders once. Customers keep their simulated
    purchase rate and dropout time (a flat rate: the window's seasonality is left out). Returns
    canonical transactions and the truth: the retention lift the contact caused among the
    contacted, against their own untreated outcomes."""
    if not 0.0 <= effect <= 1.0:
        raise ValueError(f"the treatment effect must be a probability in [0, 1], got {effect}")
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(scores["score_date"].iloc[0])
    horizon = int(scores["horizon_days"].iloc[0])
    who = scores[["customer_id", "outreach", "holdout"]].merge(customers, on="customer_id", how="left")
    if who["purchase_rate_per_day"].isna().any():
        missing = who.loc[who["purchase_rate_per_day"].isna(), "customer_id"].head(3).tolist()
        raise ValueError(f"scored customers unknown to the simulation, e.g. {missing}")
    alive_days = ((who["dropout_ts"] - start).dt.total_seconds() / 86_400).clip(0, horizon).to_numpy()
    n_orders = rng.poisson(who["purchase_rate_per_day"].to_numpy() * alive_days)
    would_churn = n_orders == 0
    contacted = (who["outreach"] & ~who["holdout"]).to_numpy()
    rescued = contacted & would_churn & (rng.random(len(who)) < effect)
    owner = np.repeat(np.arange(len(who)), n_orders)
    offset = rng.random(owner.size) * alive_days[owner]
    owner = np.concatenate([owner, np.flatnonzero(rescued)])
    offset = np.concatenate([offset, rng.random(int(rescued.sum())) * horizon])
    # whole minutes, as in the export
    ts = start + pd.to_timedelta(np.floor(offset * 1440), unit="min")
    lines = pd.DataFrame(
        {
            "customer_id": who["customer_id"].to_numpy()[owner],
            "order_ts": ts.astype("datetime64[us]"),
            "amount": np.round(rng.gamma(2.0, 20.0, owner.size), 2) + 0.01,
        }
    ).sort_values(["order_ts", "customer_id"], kind="stable", ignore_index=True)
    lines.insert(0, "source_row", np.arange(1, len(lines) + 1, dtype="int64"))
    lines["order_id"] = [f"F{i}" for i in range(1, len(lines) + 1)]
    truth = {
        "effect": effect,
        "contacted": int(contacted.sum()),
        "contacted_untreated_churn_rate": float(would_churn[contacted].mean()) if contacted.any() else 0.0,
        "true_retention_lift": float(rescued.sum() / contacted.sum()) if contacted.any() else 0.0,
        "expected_retention_lift": effect
        * (float(would_churn[contacted].mean()) if contacted.any() else 0.0),
    }
    return lines, truth


def main(
    customers_path: Path, scores_path: Path, effect: float, seed: int, out: Path, truth_out: Path
) -> dict:
    lines, truth = followup(
        customers=pd.read_parquet(customers_path), scores=read_scores(scores_path), effect=effect, seed=seed
    )
    write_parquet(validate(lines, TRANSACTIONS, "follow-up transactions"), out)
    write_json(truth, truth_out)
    log.info("follow-up: %d order lines; truth %s", len(lines), truth)
    return truth
