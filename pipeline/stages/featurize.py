"""Stage featurize: validated transactions -> labelled training snapshots at each cutoff, the scoring
snapshot at the scoring date, and fits.json for the stages after it. The definitions are in
`core/features.py`; this stage reads, calls `make_snapshots` and writes."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline.core.cutoffs import SplitNeeds
from pipeline.core.engine import read_transactions
from pipeline.core.features import Snapshots, write_snapshots
from pipeline.core.io import permissions_of, write_csv, write_headline, write_json, write_parquet
from pipeline.core.records import Fits, ScheduleRecord

log = logging.getLogger(__name__)


def main(
    params_path: Path,
    transactions: str | Path,
    train_out: Path,
    score_out: Path,
    fits_out: Path,
    metrics_out: Path,
    horizon_out: Path,
    headline_out: Path | None = None,
) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    local = [] if "://" in str(transactions) else [Path(transactions)]
    with permissions_of(*local):
        snaps = write_snapshots(
            read_transactions(transactions, params.featurize),
            params.featurize,
            SplitNeeds.of(params),
            train_out=train_out,
        )
        write_outputs(
            snaps=snaps,
            score_out=score_out,
            fits_out=fits_out,
            metrics_out=metrics_out,
            horizon_out=horizon_out,
        )
        totals = snaps.by_cutoff.sum()
        write_headline(
            {"rows": int(totals["rows"]), "churn_rate": float(totals["churned"] / totals["rows"])},
            headline_out,
        )


def fits(snaps: Snapshots) -> dict:
    """What later stages need from this one besides the snapshots (`records.Fits`): the scoring
    date, the schedule that was used (after any adaptation to the history) and the BTYD parameters
    at every cutoff."""
    record = Fits(
        score_date=snaps.score_date,
        schedule=ScheduleRecord(**snaps.schedule.as_dict()),
        cutoffs=snaps.schedule.cutoffs,
        btyd_params_by_cutoff=snaps.btyd_params,
    )
    return record.model_dump(mode="json")


def write_outputs(
    snaps: Snapshots, score_out: Path, fits_out: Path, metrics_out: Path, horizon_out: Path
) -> None:
    """Everything but the training snapshots, which `write_snapshots` streams to their file."""
    write_parquet(snaps.score, score_out)
    write_json(fits(snaps), fits_out)
    per_cutoff = snaps.by_cutoff["churned"] / snaps.by_cutoff["rows"]
    rows, churned = (int(v) for v in snaps.by_cutoff[["rows", "churned"]].sum())
    write_json(
        {
            **fits(snaps),
            "training_rows": rows,
            "scoring_rows": len(snaps.score),
            "churn_rate": round(churned / rows, 6),
            "churn_rate_by_cutoff": {
                pd.Timestamp(k).date().isoformat(): round(float(v), 6) for k, v in per_cutoff.items()
            },
            "horizon_report": {
                "reference_cutoff": snaps.horizon_reference.isoformat(),
                "inter_purchase_gap_days": {k: round(v, 3) for k, v in snaps.gap_quantiles.items()},
                "by_horizon": {
                    str(int(r.horizon_days)): {
                        "churn_rate": round(r.churn_rate, 6),
                        "false_churn_share": round(r.false_churn_share, 6),
                    }
                    for r in snaps.horizons.itertuples()
                },
            },
        },
        metrics_out,
    )
    write_csv(snaps.horizons.round(6), horizon_out)
    log.info(
        "%d training rows over %d cutoffs (churn rate %.3f), %d customers to score as of %s",
        rows,
        len(snaps.schedule.cutoffs),
        churned / rows,
        len(snaps.score),
        snaps.score_date,
    )
