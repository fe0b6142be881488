"""What happened after a score file of the simulated shop, with a known effect of outreach: the
test bed for `churn measure`. Each contacted customer (on the list, not held out) who would have
placed no order in the window is rescued with probability `effect` and orders once."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.commands.measure import read_scores
from pipeline.core.io import write_json, write_parquet
from pipeline.core.params import ScoreParams
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


# ---- many weeks of randomized contacts, with an effect known per customer (docs/uplift.md) ----


@dataclass(frozen=True)
class PlantedEffects:
    """The effect of a contact on the chance of retention, by kind of customer, in this order of
    precedence: lost causes (churn probability at least `lost_cause_risk`: nothing helps), sure
    things (at most `sure_thing_risk`: they stay anyway), sleeping dogs (first bought through
    `sleeping_dog_channel`: a contact drives them away), persuadables (average order at least the
    median: a contact keeps them), and the rest (a small effect). Only two of the five follow churn
    risk, so the riskiest customers are not the most responsive."""

    lost_cause_risk: float = 0.9
    sure_thing_risk: float = 0.15
    sleeping_dog_channel: str = "app"
    sleeping_dog: float = -0.05
    persuadable: float = 0.15
    other: float = 0.02

    def of(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the untreated chance of retention (1 - churn probability), the effect (kept
        within [0, 1] once added) and the kind of customer."""
        risk = frame["churn_probability"].to_numpy(dtype=float)
        spend = frame["avg_order_value"].to_numpy(dtype=float)
        kind = np.select(
            [
                risk >= self.lost_cause_risk,
                risk <= self.sure_thing_risk,
                frame["channel"].astype(str).to_numpy() == self.sleeping_dog_channel,
                spend >= np.nanmedian(spend),
            ],
            ["lost_cause", "sure_thing", "sleeping_dog", "persuadable"],
            default="other",
        )
        effect = pd.Series(kind).map(
            {
                "lost_cause": 0.0,
                "sure_thing": 0.0,
                "sleeping_dog": self.sleeping_dog,
                "persuadable": self.persuadable,
                "other": self.other,
            }
        )
        untreated = 1.0 - risk
        return untreated, np.clip(effect.to_numpy(dtype=float), -untreated, 1.0 - untreated), kind


@dataclass(frozen=True)
class RiskEffects:
    """A contact adds `share` x churn probability to the chance of retention: the effect follows
    churn risk exactly, so the value at risk, P(churn) x value, is each contact's true worth up to
    a factor. Played without the weekly jitter, the list is then the best contact policy there
    is, and the uplift policy can only match or lose: the case in which the switch rule must not
    fire."""

    share: float = 0.1

    def of(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        risk = frame["churn_probability"].to_numpy(dtype=float)
        return 1.0 - risk, self.share * risk, np.full(len(risk), "follows_risk")


TRUTH_COLUMNS = ["true_uplift", "untreated_retention", "effect_type"]


def population(scores_path: Path, replicas: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The customers of a score file and the features they were scored on (its kept snapshot),
    row for row, `replicas` times over with suffixed ids (a shop `replicas` times the size)."""
    from pipeline.stages.score import snapshot_archive

    scores = read_scores(scores_path)
    score_date = dt.date.fromisoformat(scores["score_date"].iloc[0])
    snapshot = pd.read_parquet(snapshot_archive(Path(scores_path).parent, score_date))
    snapshot = snapshot.drop(columns=["cutoff", "horizon_days"], errors="ignore")
    snapshot = scores[["customer_id"]].merge(snapshot, on="customer_id", how="left", validate="one_to_one")
    copies = range(replicas)
    return tuple(
        pd.concat(
            [f.assign(customer_id=f["customer_id"] + f"~{j}") if replicas > 1 else f for j in copies],
            ignore_index=True,
        )
        for f in (scores, snapshot)
    )


def play_weeks(
    customers: pd.DataFrame,
    snapshot: pd.DataFrame,
    params: ScoreParams,
    weeks: int,
    seed: int,
    effects: PlantedEffects | RiskEffects = PlantedEffects(),
    jitter: float = 0.25,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`weeks` calendar weeks of weekly files on the same customers, as `churn outcomes` would
    return them once their windows closed: the outcome table (one row per customer and kept week)
    and, row for row, the truth (the effect of a contact, the untreated chance of retention, the
    kind of customer).

    Each week's file is made as `score` makes it: its value at risk moves by a lognormal factor
    (sd `jitter`) so the list's cut-off moves, and the list, its holdout and the exploration
    sample come from `outreach.plan_week` (keyed by the seed). Only the weeks `churn outcomes`
    keeps are played (every ceil(horizon / 7)-th, whose windows do not overlap: `measure.apart`),
    and only those whose window has closed by the end.
    A row is retained with chance untreated + effect x contact."""
    from pipeline.core.cutoffs import iso_week_label
    from pipeline.core.outreach import plan_week
    from pipeline.core.uplift import OUTCOME_COLUMNS

    horizon = int(customers["horizon_days"].iloc[0])
    step = math.ceil(horizon / 7)
    start = dt.date.fromisoformat(str(customers["score_date"].iloc[0]))
    keyed = params.model_copy(update={"holdout_key": f"{params.holdout_key}|simulation-{seed}"})
    rng = np.random.default_rng(seed)
    ids = customers["customer_id"].astype(str)
    campaign = customers["recommended_campaign"].to_numpy(dtype=str)
    tiers = customers["risk_tier"].to_numpy(dtype=str)
    suppressed = customers["do_not_contact"].to_numpy(dtype=bool)
    if not (snapshot["customer_id"].to_numpy() == customers["customer_id"].to_numpy()).all():
        raise ValueError("the snapshot must hold the scored customers, row for row")
    features = snapshot.drop(columns=[c for c in snapshot.columns if c in OUTCOME_COLUMNS]).reset_index(
        drop=True
    )
    untreated, effect, kind = effects.of(
        pd.concat([customers[["churn_probability"]].reset_index(drop=True), features], axis=1)
    )
    tables, truths = [], []
    for w in range(0, weeks - step + 1, step):
        day = start + dt.timedelta(days=7 * w)
        label = iso_week_label(day)
        at_risk = customers["value_at_risk"].to_numpy(dtype=float) * np.exp(
            jitter * rng.standard_normal(len(ids))
        )
        plan = plan_week(
            customer_ids=ids,
            priority=at_risk,
            value=customers["predicted_value"].to_numpy(dtype=float),
            campaign=campaign,
            risk_tier=tiers,
            week=label,
            params=keyed,
            suppressed=suppressed,
        )
        outreach, holdout, explored, contact = plan.outreach, plan.holdout, plan.exploration, plan.contact
        retained = rng.random(len(ids)) < untreated + effect * contact
        week = pd.DataFrame(
            {
                "customer_id": ids.to_numpy(),
                "week": label,
                "score_date": day.isoformat(),
                "horizon_days": horizon,
                "churn_probability": customers["churn_probability"].to_numpy(),
                "value_at_risk": np.round(at_risk, 2),
                "predicted_value": customers["predicted_value"].to_numpy(),
                "risk_tier": tiers,
                "recommended_campaign": campaign,
                "outreach": outreach,
                "holdout": holdout & outreach,
                "exploration": explored.contacted,
                "contact": contact,
                "contact_probability": explored.contact_probability,
                "contact_policy": explored.policy,
                "retained": retained.astype(int),
            }
        )
        tables.append(pd.concat([week, features], axis=1))
        truths.append(
            pd.DataFrame({"true_uplift": effect, "untreated_retention": untreated, "effect_type": kind})
        )
    if not tables:
        raise ValueError(f"{weeks} weeks hold no {horizon}-day window that has closed")
    return pd.concat(tables, ignore_index=True), pd.concat(truths, ignore_index=True)


def weeks_main(
    params_path: Path, scores_path: Path, weeks: int, seed: int, replicas: int, out: Path, truth_out: Path
) -> str:
    """`churn simulate-outcomes`: the outcome table of `weeks` simulated weeks on a score file's
    customers, and the truth behind it, for trying `churn uplift` before real weeks have passed."""
    from pipeline.core.params import load_params

    scores, snapshot = population(scores_path, replicas)
    table, truth = play_weeks(
        customers=scores, snapshot=snapshot, params=load_params(params_path).score, weeks=weeks, seed=seed
    )
    write_parquet(table, out)
    write_parquet(pd.concat([table[["customer_id", "week"]], truth], axis=1), truth_out)
    kinds = truth["effect_type"].value_counts()
    return (
        f"{out}: {len(table):,} customer-weeks in {table['week'].nunique()} week(s), "
        f"{int(table['contact'].sum()):,} contacted; kinds per customer-week: {kinds.to_dict()}"
    )
