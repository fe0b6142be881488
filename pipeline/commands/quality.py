"""`churn benchmark quality`: the pipeline and its baselines on any transactions file, as a
rolling-origin backtest table (model and every baseline, per origin cutoff)."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

import ibis
import pandas as pd
import yaml

from pipeline.core.columns import LABEL
from pipeline.core.cutoffs import Schedule, SplitNeeds
from pipeline.core.errors import PipelineError
from pipeline.core.features import make_snapshots
from pipeline.core.metrics import classification_metrics
from pipeline.core.oracle import truth_at
from pipeline.core.params import Params, ParamsError, validate_params
from pipeline.core.shop import SimulatedShop, read_shop
from pipeline.stages.backtest import backtest
from pipeline.stages.ingest import ingest

log = logging.getLogger(__name__)
ORACLE = "oracle"


class QualityError(PipelineError):
    """The benchmark's inputs do not fit together."""


COLUMNS = ["roc_auc", "pr_auc", "brier", "ece", "lift_top10"]


def load_mapping(path: Path, base: Params) -> Params:
    """Params with a data set's own settings over them, from a YAML file: sections of params.yaml
    (`ingest:`, and optionally `featurize:` and others, each merged key by key), or a bare
    `ingest` section (columns, date_formats, ...)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"{path}: cannot read the mapping: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: invalid mapping: expected a YAML mapping, got {type(raw).__name__}")
    sections = raw if set(raw) & set(Params.model_fields) else {"ingest": raw}
    current = base.model_dump()
    unknown = sorted(set(sections) - set(current))
    if unknown:
        raise ParamsError(f"{path}: invalid mapping: unknown section(s) {unknown}")
    merged = {**current, **{k: {**current[k], **(v or {})} for k, v in sections.items()}}
    return validate_params(merged, f"{path}: invalid mapping")


def dated(params: Params, cutoff: str | None, horizon: int | None) -> Params:
    """Params for a dated question: churn over `horizon` days, the latest cutoff at `cutoff` (the
    scoring date goes to cutoff + horizon, so that cutoff's label window is the last to close), or
    at the last date of the cutoff grid before it (`cutoffs.latest_cutoff`)."""
    featurize = params.featurize
    if horizon is not None:
        featurize = featurize.model_copy(update={"horizon_days": horizon})
    if cutoff is not None:
        if featurize.horizon_days == "auto":
            raise ParamsError(
                "a dated question needs a horizon: pass --horizon or set featurize.horizon_days"
            )
        try:
            day = dt.date.fromisoformat(cutoff)
        except ValueError:
            raise ParamsError(f"--cutoff {cutoff!r}: expected a date as YYYY-MM-DD") from None
        featurize = featurize.model_copy(
            update={"score_date": day + dt.timedelta(days=featurize.horizon_days)}
        )
    return params.model_copy(update={"featurize": featurize})


def verdict(table: pd.DataFrame, cutoff: str) -> str:
    """The model against the best baseline at the dated cutoff, on ROC AUC and PR AUC."""
    at = table[table["cutoff"] == cutoff].set_index("scorer")
    if at.empty or "model" not in at.index:
        return f"no evaluation at {cutoff}"
    model = at.loc["model"]
    lines = [f"at {cutoff} ({int(model['rows'])} customers, churn rate {model['churn_rate']:.3f}):"]
    for metric in ("roc_auc", "pr_auc"):
        others = at.drop(index=["model", ORACLE], errors="ignore")[metric]
        best = others.idxmax()
        gap = at.loc["model", metric] - others.max()
        lines.append(
            f"  {metric}: model {model[metric]:.4f}, best baseline {best} {others.max():.4f}, gap {gap:+.4f}"
        )
    if ORACLE in at.index:
        gap = at.loc["model", "roc_auc"] - at.loc[ORACLE, "roc_auc"]
        lines.append(f"  roc_auc: oracle {at.loc[ORACLE, 'roc_auc']:.4f}, model's gap to it {gap:+.4f}")
    return "\n".join(lines)


def oracle_rows(
    snapshots: pd.DataFrame, truth: pd.DataFrame, origins: list[str], top_share: float
) -> list[dict]:
    """The simulator's Bayes oracle scored on each origin's rows, as scorer `oracle`: what no
    model of the history can beat on average. Needs the truth of every row (`oracle.truth_at` at
    the origins, on the snapshots' schedule)."""
    rows = []
    for origin in origins:
        at = snapshots[snapshots["cutoff"] == pd.Timestamp(origin)][["customer_id", "cutoff", LABEL]]
        oracle = truth[["customer_id", "cutoff", "bayes_p_no_order"]]
        joined = at.merge(oracle, on=["customer_id", "cutoff"], how="left", validate="one_to_one")
        missing = int(joined["bayes_p_no_order"].isna().sum())
        if missing:
            raise QualityError(
                f"the truth has no oracle for {missing} of the {len(at)} customers at {origin}: "
                "is the simulated shop the one that wrote this export (same simulate params)?"
            )
        y, p = joined[LABEL].to_numpy(), joined["bayes_p_no_order"].to_numpy()
        head = {"cutoff": origin, "rows": len(at), "churn_rate": float(y.mean())}
        rows.append(
            {
                **head,
                "scorer": ORACLE,
                **classification_metrics(y=y, p=p, top_share=top_share, probability=True),
            }
        )
    return rows


def quality_table(
    transactions: Path, params: Params, today: dt.date, shop: SimulatedShop | None = None
) -> tuple[pd.DataFrame, Schedule]:
    """The backtest table on any export, checked as of `today` (orders after it are quarantined
    unless `ingest.valid_until` says otherwise); for an export of a simulated `shop`, the Bayes
    oracle's rows too, at the same origins on the same schedule."""
    with tempfile.TemporaryDirectory() as tmp:
        kept = Path(tmp) / "transactions.parquet"
        tally = ingest(
            path=transactions,
            params=params.ingest,
            kept_out=kept,
            quarantine_out=Path(tmp) / "quarantine.parquet",
            today=today,
        )
        log.info("%s: %d rows kept, %d quarantined", transactions, tally.kept_rows, tally.quarantined_rows)
        lines = ibis.duckdb.connect().read_parquet(kept)
        snaps = make_snapshots(lines, params.featurize, SplitNeeds.of(params))
        table = backtest(snaps.train, params, params.backtest.origins)
        if shop is not None:
            origins = sorted(table["cutoff"].unique())
            truth = truth_at(
                shop,
                cutoffs=[dt.date.fromisoformat(o) for o in origins],
                horizon=snaps.schedule.horizon_days,
                lookback=snaps.schedule.lookback_days,
            )
            oracle = oracle_rows(
                snapshots=snaps.train,
                truth=truth,
                origins=origins,
                top_share=params.evaluate.top_share,
            )
            table = pd.concat([table, pd.DataFrame(oracle)], ignore_index=True)
        return table, snaps.schedule


def describe(schedule: Schedule) -> str:
    """The schedule the table was measured on, and how it was adapted to the history."""
    head = (
        f"churn = no order within {schedule.horizon_days} days; {len(schedule.cutoffs)} cutoffs every "
        f"{schedule.every_days} days from {schedule.cutoffs[0]} to {schedule.cutoffs[-1]}; customers "
        f"with an order in the {schedule.lookback_days} days before a cutoff"
    )
    return "\n".join([head, *(f"  adapted: {change}" for change in schedule.changes)])


def render(table: pd.DataFrame) -> str:
    """One line per origin and scorer, then the mean over origins."""
    present = [c for c in COLUMNS if c in table.columns]
    shown = table[["cutoff", "scorer", "rows", "churn_rate", *present]].copy()
    mean = table.groupby("scorer", sort=False)[["churn_rate", *present]].mean().reset_index()
    mean.insert(0, "cutoff", "mean")
    mean.insert(2, "rows", table.groupby("scorer", sort=False)["rows"].sum().to_numpy())
    out = pd.concat([shown, mean], ignore_index=True)
    return out.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")


def main(
    params_path: Path,
    transactions: Path,
    mapping: Path | None,
    cutoff: str | None,
    horizon: int | None,
    simulated: Path | None,
    out: Path | None,
) -> str:
    """`churn benchmark quality`: the schedule, the per-origin table and, for a dated question, the
    verdict at the cutoff, as the text to print; the table also as CSV at `out`."""
    from pipeline.core.io import check_input, write_csv
    from pipeline.core.params import load_params

    settings = load_params(params_path)
    if mapping is not None:
        settings = load_mapping(mapping, settings)
    settings = dated(settings, cutoff, horizon)
    shop = None
    if simulated is not None:
        latent = (simulated / "customers.parquet", simulated / "orders.parquet")
        for path in latent:
            check_input(path, "parquet")
        shop = read_shop(settings.simulate, *latent)
    table, schedule = quality_table(transactions, settings, today=dt.date.today(), shop=shop)
    lines = [describe(schedule), render(table)]
    if cutoff is not None:
        latest = schedule.cutoffs[-1].isoformat()
        if latest != cutoff:
            lines.append(f"the latest cutoff is {latest}, the last date of the cutoff grid before {cutoff}")
        lines.append(verdict(table, latest))
    if out is not None:
        write_csv(table, out)
    return "\n".join(lines)
