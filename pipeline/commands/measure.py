"""`churn measure`: what happened after a weekly score file, once its horizon has passed.

Realized churn of every scored customer (no order in [score_date, score_date + horizon)), by risk
tier and decile; how well the file ranked and was calibrated (AUC, PR AUC, lift, Brier, ECE) on
the customers nobody contacted, since contact changes the outcome it predicts; and the retention
lift of the outreach: customers on the list who were contacted against those held out at random,
with a 95% confidence interval. Logged to MLflow and written as JSON, CSV and a short Markdown
report.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import ibis
import mlflow
import numpy as np
import pandas as pd

from pipeline.core import tracking
from pipeline.core.calibration import reliability_table
from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path, unescape_formulas, write_csv, write_json, write_parquet
from pipeline.core.metrics import classification_metrics
from pipeline.core.orders import orders_from_lines
from pipeline.core.tables import SCORE_FILE_SCHEMA, read_table
from pipeline.core.uplift import OUTCOME_COLUMNS
from pipeline.stages.score import snapshot_archive

log = logging.getLogger(__name__)
Z_95 = 1.959963984540054


class MeasureError(PipelineError):
    """The outcome of a score file cannot be measured (yet)."""


def read_scores(path: Path) -> pd.DataFrame:
    scores = read_table(path, SCORE_FILE_SCHEMA)
    if scores.empty:
        raise MeasureError(f"{path}: no scored customers")
    for column in ("score_date", "horizon_days"):
        if scores[column].nunique() != 1:
            raise MeasureError(
                f"{path}: column {column!r} must hold one value, found {scores[column].unique()[:5]}"
            )
    scores["customer_id"] = unescape_formulas(scores["customer_id"])
    return scores


def realized_churn(scores: pd.DataFrame, transactions: Path) -> tuple[np.ndarray, dt.date, dt.date]:
    """1 where the customer placed no order in the window, by the label's definition of an order."""
    start = dt.date.fromisoformat(scores["score_date"].iloc[0])
    end = start + dt.timedelta(days=int(scores["horizon_days"].iloc[0]))
    lines = ibis.duckdb.connect().read_parquet(transactions)
    last = lines.order_ts.max().to_pandas()
    if pd.isna(last) or pd.Timestamp(last) < pd.Timestamp(end) - pd.Timedelta(days=1):
        raise MeasureError(
            f"{transactions}: the data ends {last}, before the {scores['horizon_days'].iloc[0]}-day window "
            f"of the {start} file closes on {end}: measure once the horizon has passed"
        )
    orders = orders_from_lines(lines)  # what the label counts as an order
    window = orders.filter((orders.order_ts >= pd.Timestamp(start)) & (orders.order_ts < pd.Timestamp(end)))
    buyers = set(window.select("customer_id").distinct().to_pandas()["customer_id"].astype(str))
    return (~scores["customer_id"].isin(buyers)).to_numpy().astype(int), start, end


@dataclass(frozen=True)
class Lift:
    contacted: int
    held_out: int
    retention_contacted: float
    retention_held_out: float
    lift: float  # retention points gained by contact (contacted - held out)
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in vars(self).items()}


def retention_lift(retained: np.ndarray, contacted: np.ndarray, held_out: np.ndarray) -> Lift:
    """Difference in retention rate, contacted minus held out, with a Wald 95% interval for the
    difference of two independent proportions (the holdout is a random draw from the same list)."""
    n1, n0 = int(contacted.sum()), int(held_out.sum())
    if n1 == 0 or n0 == 0:
        raise MeasureError(f"the outreach list has {n1} contacted and {n0} held-out customers: no comparison")
    p1, p0 = float(retained[contacted].mean()), float(retained[held_out].mean())
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return Lift(
        contacted=n1,
        held_out=n0,
        retention_contacted=p1,
        retention_held_out=p0,
        lift=p1 - p0,
        ci_low=p1 - p0 - Z_95 * se,
        ci_high=p1 - p0 + Z_95 * se,
    )


def by_group(scores: pd.DataFrame, churned: np.ndarray, column: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {column: scores[column], "predicted": scores["churn_probability"], "churned": churned}
    )
    out = frame.groupby(column, sort=True).agg(
        customers=("churned", "size"), predicted=("predicted", "mean"), realized=("churned", "mean")
    )
    return out.reset_index().round(6)


def measure(scores: pd.DataFrame, churned: np.ndarray, top_share: float, bins: int) -> dict:
    contacted = (scores["outreach"] & ~scores["holdout"]).to_numpy()
    untouched = ~contacted
    y, p = churned[untouched], scores["churn_probability"].to_numpy()[untouched]
    result: dict = {
        "customers": len(scores),
        "realized_churn_rate": round(float(churned.mean()), 6),
        "predicted_churn_rate": round(float(scores["churn_probability"].mean()), 6),
        "uncontacted_customers": int(untouched.sum()),
    }
    if 0 < y.sum() < len(y):
        result["quality_uncontacted"] = {
            k: round(v, 6) for k, v in classification_metrics(y, p, top_share).items()
        }
        result["reliability_uncontacted"] = reliability_table(y, p, bins)
    retained = 1 - churned
    if scores["outreach"].any():
        result["outreach"] = retention_lift(
            retained, contacted, (scores["outreach"] & scores["holdout"]).to_numpy()
        ).as_dict()
        per_campaign = {}
        for campaign, rows in scores[scores["outreach"]].groupby("recommended_campaign"):
            mask = scores.index.isin(rows.index)
            try:
                per_campaign[campaign] = retention_lift(
                    retained, mask & contacted, mask & scores["holdout"].to_numpy()
                ).as_dict()
            except MeasureError:
                continue
        result["outreach_by_campaign"] = per_campaign
    return result


def report(result: dict, tiers: pd.DataFrame, deciles: pd.DataFrame, source: str, window: tuple) -> str:
    lines = [
        f"# Outcome of {source}",
        "",
        f"Window {window[0]} to {window[1]} (exclusive): {result['customers']} customers scored, "
        f"realized churn {result['realized_churn_rate']:.1%} against "
        f"{result['predicted_churn_rate']:.1%} predicted.",
        "",
    ]
    if "outreach" in result:
        o = result["outreach"]
        lines += [
            "## Outreach",
            "",
            f"Retention {o['retention_contacted']:.1%} of {o['contacted']} contacted vs "
            f"{o['retention_held_out']:.1%} of {o['held_out']} held out: lift {o['lift'] * 100:+.1f} points "
            f"(95% CI {o['ci_low'] * 100:+.1f} to {o['ci_high'] * 100:+.1f}).",
            "",
        ]
    if "quality_uncontacted" in result:
        q = result["quality_uncontacted"]
        lines += [
            "## The file's quality (customers not contacted)",
            "",
            f"ROC AUC {q['roc_auc']:.3f}, PR AUC {q['pr_auc']:.3f}, Brier {q['brier']:.3f}, "
            f"ECE {q['ece']:.3f}.",
            "",
        ]
    for title, table in (("By risk tier", tiers), ("By risk decile", deciles)):
        lines += [f"## {title}", "", table.to_markdown(index=False, floatfmt=".3f"), ""]
    return "\n".join(lines)


def contact_columns(scores: pd.DataFrame) -> pd.DataFrame:
    """`scores` with the contact columns of schema 1.1; a 1.0 file had no exploration sample, so
    they follow from its list and holdout (a listed row was contacted with chance 1 - H / L)."""
    if "contact_probability" in scores.columns:
        return scores
    listed = scores["outreach"].to_numpy()
    held = (scores["holdout"] & scores["outreach"]).to_numpy()
    chance = (listed.sum() - held.sum()) / listed.sum() if listed.any() else 0.0
    return scores.assign(
        exploration=False,
        contact=listed & ~held,
        contact_probability=np.where(listed, chance, 0.0),
        contact_policy=np.where(listed, "value_at_risk", "none"),
    )


def apart(table: pd.DataFrame) -> pd.DataFrame:
    """Per customer, the weeks whose outcome windows do not overlap: the earliest, then the next
    that starts on or after its window's end, and so on. A rule of dates only, never of contact
    or outcome, so it selects no kind of customer or week over another."""
    starts = pd.to_datetime(table["score_date"]).to_numpy()
    ends = starts + pd.to_timedelta(table["horizon_days"].astype(int), unit="D").to_numpy()
    order = np.lexsort((starts, table["customer_id"].to_numpy(dtype=str)))
    keep = np.zeros(len(table), dtype=bool)
    ids = table["customer_id"].to_numpy(dtype=str)
    current, free_from = None, None
    for i in order:
        if ids[i] != current:
            current, free_from = ids[i], None
        if free_from is None or starts[i] >= free_from:
            keep[i] = True
            free_from = ends[i]
    return table[keep]


def outcome_table(score_files: list[Path], transactions: Path) -> tuple[pd.DataFrame, list[str]]:
    """One row per (customer, week) of every file whose outcome window has closed: what the file
    said and decided (contact, its exact probability, the policy), whether the customer was
    retained (an order in the window), and the features the customer was scored on (kept by
    `score` beside each file), with each customer's weeks kept apart (`apart`). Also the files
    left out, with why."""
    weeks, skipped = [], []
    for path in sorted(score_files):
        scores = read_scores(path)
        try:
            churned, _, _ = realized_churn(scores, transactions)
        except MeasureError as exc:
            skipped.append(f"{path.name}: {exc}")
            continue
        week = contact_columns(scores).assign(
            week=path.stem.removeprefix("churn_scores_"), retained=1 - churned
        )[OUTCOME_COLUMNS]
        archive = snapshot_archive(path.parent, dt.date.fromisoformat(scores["score_date"].iloc[0]))
        if archive.exists():
            features = pd.read_parquet(archive).drop(columns=["cutoff", "horizon_days"], errors="ignore")
            week = week.merge(features, on="customer_id", how="left", validate="one_to_one")
        else:
            skipped.append(
                f"{path.name}: no scoring snapshot kept beside it ({archive.name}); features left empty"
            )
        weeks.append(week)
    if not weeks:
        raise MeasureError("no score file whose outcome window has closed: " + "; ".join(skipped))
    table = pd.concat(weeks, ignore_index=True)
    kept = apart(table).sort_values(["week", "customer_id"], kind="stable", ignore_index=True)
    return kept, skipped


def outcomes_main(scores_dir: Path, transactions: Path, out: Path) -> str:
    """`churn outcomes`: the outcome table across every past week, as Parquet."""
    files = sorted(Path(scores_dir).glob("churn_scores_*.csv"))
    if not files:
        raise MeasureError(f"{scores_dir}: no churn_scores_*.csv files")
    table, skipped = outcome_table(files, transactions)
    write_parquet(table, out)
    lines = [f"{out}: {len(table)} customer-weeks from {table['week'].nunique()} week(s), "
             f"{int(table['contact'].sum())} contacted"]  # fmt: skip
    lines += [f"left out: {reason}" for reason in skipped]
    return "\n".join(lines)


def main(params_path: Path, scores_path: Path, transactions: Path, out_dir: Path) -> dict:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    scores = read_scores(scores_path)
    churned, start, end = realized_churn(scores, transactions)
    result = measure(
        scores=scores,
        churned=churned,
        top_share=params.evaluate.top_share,
        bins=params.evaluate.calibration_bins,
    )
    tiers, deciles = by_group(scores, churned, "risk_tier"), by_group(scores, churned, "risk_decile")
    out_dir = Path(out_dir)
    write_json(
        {"scores": Path(scores_path).name, "window": [start.isoformat(), end.isoformat()], **result},
        out_dir / "measure.json",
    )
    for name, table in (("by_tier.csv", tiers), ("by_decile.csv", deciles)):
        write_csv(table, out_dir / name)
    with atomic_path(out_dir / "report.md") as tmp:
        tmp.write_text(
            report(
                result=result,
                tiers=tiers,
                deciles=deciles,
                source=Path(scores_path).name,
                window=(start, end),
            ),
            encoding="utf-8",
        )
    tracking.configure(params.mlflow.experiment)
    with mlflow.start_run(run_name=f"measure-{Path(scores_path).stem}"):
        mlflow.set_tags(
            {
                "kind": "measure",
                "model_version": scores["model_version"].iloc[0],
                "score_date": start.isoformat(),
            }
        )
        mlflow.log_metrics(
            {"realized/churn_rate": result["realized_churn_rate"]}
            | tracking.flat_metrics(result.get("quality_uncontacted", {}), "uncontacted")
            | tracking.flat_metrics(result.get("outreach", {}), "outreach")
        )
        mlflow.log_artifacts(str(out_dir), "measure")
    log.info(
        "%s: realized churn %.3f; outreach %s",
        scores_path,
        result["realized_churn_rate"],
        result.get("outreach"),
    )
    return result
