"""Stage report: the retention numbers and pictures analysts ask for, in one self-contained HTML file
per run (figures embedded), a short Markdown summary, DVC plots and MLflow artifacts.

Activity follows the churn label's rule, so reported and predicted churn reconcile: at a date t the
shop's customers are those with an order in the eligibility lookback before t; a customer with no
order in [t, t + horizon) is lost. For a period [t, t + horizon):

    churn rate     = customers lost / customers at the start
    retention rate = (customers at the end - new customers in the period) / customers at the start

where customers at the end are those who ordered in the period, and new customers are those whose
first order falls in it. So retention = 1 - churn + reactivated, reactivated being customers back
from beyond the lookback, as a share of the customers at the start.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Iterable
from pathlib import Path

import ibis
import ibis.expr.types as ir
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from pipeline.core import tracking
from pipeline.core.columns import LABEL
from pipeline.core.engine import hold
from pipeline.core.io import atomic_path, read_json, write_csv, write_headline, write_json
from pipeline.core.model import SUMMARY_FILE, ChurnModel
from pipeline.core.orders import orders_from_lines
from pipeline.core.partitions import each_snapshot_file
from pipeline.core.records import Fits, read_record
from pipeline.core.tables import SCORE_FILE_SCHEMA, read_table
from pipeline.core.uplift import DECISION_FILE

log = logging.getLogger(__name__)
DAY = pd.Timedelta(days=1)
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px}"
    ".card{border:1px solid #ddd;border-radius:6px;padding:10px 14px}"
    ".v{font-size:20px;font-weight:600}.k{font-size:12px;color:#666}img{max-width:100%;height:auto}"
    ".scroll{max-width:100%;overflow-x:auto}"
    "table.t{border-collapse:collapse;font-size:12px}"
    "table.t td,table.t th{border-bottom:1px solid #eee;padding:3px 8px;text-align:right;white-space:nowrap}"
    ".missing{color:#8a5a00;background:#fff8e5;border-left:3px solid #e0a800;padding:6px 10px}"
)
# the held-out metrics the model-vs-baselines table shows, in this order (then lift and capture)
COMPARED = {"roc_auc": "ROC AUC", "pr_auc": "PR AUC", "ece": "ECE", "brier": "Brier"}


def orders_of(lines: ir.Table) -> ir.Table:
    """One row per order, by the same definition the features and labels use, kept in the engine:
    the report's activity tables are aggregates of it, computed there (never the orders in pandas)."""
    orders = orders_from_lines(lines)
    orders = orders.select("customer_id", "order_ts", amount=orders.value.cast("float64"))
    # held by the engine, so the tables below do not each aggregate the lines again
    return hold(orders, "report_orders")


def period_rates(
    orders: ir.Table, starts: list[pd.Timestamp], horizon_days: int, lookback_days: int
) -> pd.DataFrame:
    """Churn, retention and reactivation per period [start, start + horizon), by the formulas above.
    Each order meets the periods whose lookback or period holds it; per (customer, period): an order
    before the start (in the lookback), an order in the period, and whether the first order ever
    falls in the period."""
    periods = ibis.memtable(
        pd.DataFrame(
            {
                "start": pd.Series(starts, dtype="datetime64[us]"),
                "end": pd.Series([s + horizon_days * DAY for s in starts], dtype="datetime64[us]"),
                "since": pd.Series([s - lookback_days * DAY for s in starts], dtype="datetime64[us]"),
            }
        )
    )
    first = orders.group_by("customer_id").aggregate(first_ts=orders.order_ts.min())
    j = orders.join(periods, (orders.order_ts >= periods.since) & (orders.order_ts < periods.end))
    per = j.group_by(["customer_id", "start", "end"]).aggregate(
        before=(j.order_ts < j.start).any(), during=(j.order_ts >= j.start).any()
    )
    per = per.join(first, "customer_id")
    new = per.during & (per.first_ts >= per.start)
    counts = (
        per.group_by("start")
        .aggregate(
            customers_at_start=per.before.sum(),
            customers_lost=(per.before & ~per.during).sum(),
            customers_at_end=per.during.sum(),
            new_customers=new.sum(),
            reactivated=(per.during & ~new & ~per.before).sum(),
        )
        .to_pandas()
        .set_index("start")
    )
    counts.index = pd.DatetimeIndex(counts.index).astype("datetime64[us]")
    counts = counts.reindex(pd.DatetimeIndex(starts).astype("datetime64[us]")).fillna(0).astype("int64")
    n = counts["customers_at_start"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "period_start": [s.date().isoformat() for s in starts],
                "customers_at_start": counts["customers_at_start"].to_numpy(),
                "customers_lost": counts["customers_lost"].to_numpy(),
                "customers_at_end": counts["customers_at_end"].to_numpy(),
                "new_customers": counts["new_customers"].to_numpy(),
                "churn_rate": np.where(n > 0, counts["customers_lost"] / n, np.nan),
                "retention_rate": np.where(
                    n > 0, (counts["customers_at_end"] - counts["new_customers"]) / n, np.nan
                ),
                "reactivated_share": np.where(n > 0, counts["reactivated"] / n, np.nan),
            }
        )


def cohort_matrix(orders: ir.Table, until: pd.Timestamp) -> pd.DataFrame:
    """Share of each first-order-month cohort that ordered in each later month (0 = the first)."""
    before = orders.filter(orders.order_ts < until.to_datetime64())
    active = before.select(
        "customer_id", month=before.order_ts.year() * 12 + before.order_ts.month() - 1
    ).distinct()
    active = active.mutate(cohort=active.month.min().over(group_by=active.customer_id))
    counts = (
        active.group_by([active.cohort, (active.month - active.cohort).name("offset")])
        .aggregate(n=active.count())
        .to_pandas()
    )
    counts["cohort"] = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in counts["cohort"]]
    counts = counts.set_index(["cohort", "offset"])["n"].unstack(fill_value=0)
    sizes = counts[0]
    last_full = until.to_period("M") - 1  # the month `until` falls in is not over
    matrix = counts.div(sizes, axis=0)
    for c in matrix.index:  # months not over yet are unknown, not zero
        ends = (last_full - pd.Period(c, "M")).n
        matrix.loc[c, matrix.columns > ends] = np.nan
    matrix.insert(0, "customers", sizes)
    return matrix


def last_year_activity(orders: ir.Table, since: pd.Timestamp) -> tuple[float, float]:
    """Average order value and orders per ordering customer, over the orders from `since` on."""
    recent = orders.filter(orders.order_ts >= since.to_datetime64())
    row = recent.aggregate(
        value=recent.amount.mean(), orders=recent.count(), customers=recent.customer_id.nunique()
    ).to_pandas()
    orders_n, customers = int(row["orders"].iloc[0]), int(row["customers"].iloc[0])
    return float(row["value"].iloc[0]), (orders_n / customers if customers else float("nan"))


def segment_table(scores: pd.DataFrame, snapshot: pd.DataFrame) -> pd.DataFrame:
    """Per segment: size, churn risk, value at risk, average order value, purchase frequency (orders
    in the last year), historic CLV (spend to date) and predicted CLV."""
    joined = scores.merge(
        snapshot[["customer_id", "spend", "n_orders", "orders_365d", "spend_365d"]],
        on="customer_id",
        how="left",
    )
    by = joined.groupby("segment")
    out = pd.DataFrame(
        {
            "customers": by.size(),
            "mean_churn_probability": by["churn_probability"].mean(),
            "value_at_risk": by["value_at_risk"].sum(),
            "average_order_value": by["spend"].sum() / by["n_orders"].sum(),
            "orders_per_year": by["orders_365d"].mean(),
            "historic_clv": by["spend"].mean(),
            "predicted_clv": by["predicted_value"].mean(),
            "on_outreach_list": by["outreach"].sum(),
        }
    )
    return out.sort_values("value_at_risk", ascending=False).round(4)


MONEY_COLUMNS = ("value_at_risk", "average_order_value", "historic_clv", "predicted_clv")


def money(value: float, currency: str) -> str:
    """An amount as a retention team reads it: two decimals, thousands separated, the currency."""
    return f"{currency} {value:,.2f}"


def formatted_segments(segments: pd.DataFrame, currency: str) -> pd.DataFrame:
    """The segment table as text: counts with separators, risk as a percentage, money with the
    currency and two decimals."""
    out = pd.DataFrame(index=segments.index)
    out["customers"] = segments["customers"].map("{:,.0f}".format)
    out["mean churn probability"] = segments["mean_churn_probability"].map("{:.1%}".format)
    for column in MONEY_COLUMNS:
        out[column.replace("_", " ").replace("clv", "CLV")] = segments[column].map(
            lambda v: money(v, currency)
        )
    out["orders per year"] = segments["orders_per_year"].map("{:.2f}".format)
    out["on outreach list"] = segments["on_outreach_list"].map("{:,.0f}".format)
    return out


def model_vs_baselines(evaluation: dict, backtest: dict | None) -> pd.DataFrame:
    """The model beside the current champion, every baseline and (on a simulation) the oracle on
    the same held-out rows, with the backtest's mean ROC AUC over its origins where there is one."""
    scorers = {"model (this run)": evaluation["model"]}
    champion = evaluation.get("champion", {})
    if champion.get("compared"):
        scorers[f"champion (version {champion['version']})"] = champion
    scorers |= evaluation["baselines"]
    for name in ("oracle", "ceiling"):
        if name in evaluation:
            scorers[f"{name} (simulation)"] = evaluation[name]
    shares = [k for k in evaluation["model"] if k.startswith(("lift_top", "capture_top"))]
    columns = COMPARED | {k: k.replace("_top", ", top ") + "%" for k in shares}
    table = pd.DataFrame({name: {k: m.get(k, np.nan) for k in columns} for name, m in scorers.items()}).T
    table = table.rename(columns=columns)
    if backtest:
        names = {"model (this run)": "model", **{b: b for b in evaluation["baselines"]}}
        table["backtest mean ROC AUC"] = [
            backtest.get(names.get(name, ""), {}).get("roc_auc", np.nan) for name in table.index
        ]
    return table.dropna(axis=1, how="all")


def segment_movement(current: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame | None:
    """Customers by last week's segment (rows) and this week's (columns)."""
    if previous is None:
        return None
    joined = previous[["customer_id", "segment"]].merge(
        current[["customer_id", "segment"]], on="customer_id", how="outer", suffixes=("_before", "_now")
    )
    joined = joined.fillna({"segment_before": "(not scored)", "segment_now": "(not scored)"})
    return pd.crosstab(joined["segment_before"], joined["segment_now"])


def predicted_vs_realized(
    pieces: Iterable[pd.DataFrame], model: ChurnModel, trained_on: list[str]
) -> pd.DataFrame:
    """Per cutoff: the model's mean predicted churn against the realized rate, and whether the
    model was trained without that cutoff's labels. `pieces`: the snapshots a piece at a time (a
    file each), so the table is never held whole; per-cutoff sums are added up over the pieces."""
    sums = []
    for piece in pieces:
        frame = pd.DataFrame(
            {"cutoff": piece["cutoff"], "predicted": model.probability(piece), "realized": piece[LABEL]}
        )
        sums.append(
            frame.groupby("cutoff").agg(
                customers=("realized", "size"), predicted=("predicted", "sum"), realized=("realized", "sum")
            )
        )
    total = pd.concat(sums).groupby(level=0).sum()
    total.index = total.index.strftime("%Y-%m-%d")  # the few cutoffs named, not every row
    out = pd.DataFrame(
        {
            "customers": total["customers"],
            "predicted_churn_rate": total["predicted"] / total["customers"],
            "realized_churn_rate": total["realized"] / total["customers"],
        }
    )
    out["held_out"] = ~out.index.isin(trained_on)
    return out.reset_index().round(6)


# ---- figures ------------------------------------------------------------------------------------


def _png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figures(
    rates: pd.DataFrame,
    cohorts: pd.DataFrame,
    scores: pd.DataFrame,
    pvr: pd.DataFrame,
    segments: pd.DataFrame,
    currency: str,
) -> dict[str, str]:
    out = {}
    fig, ax = plt.subplots(figsize=(11, 6))
    shares = cohorts.drop(columns="customers").iloc[:, :19]
    image = ax.imshow(
        shares.to_numpy(dtype=float),
        aspect="auto",
        cmap="Blues",
        vmin=0,
        vmax=max(
            0.05, float(np.nanmax(shares.iloc[:, 1:].to_numpy(dtype=float))) if shares.shape[1] > 1 else 1
        ),
    )
    ax.set(
        title="Cohort retention: share of each first-order month ordering again",
        xlabel="months since first order",
        ylabel="cohort",
    )
    ax.set_yticks(range(len(shares)), shares.index, fontsize=7)
    ax.set_xticks(range(shares.shape[1]), shares.columns)
    fig.colorbar(image, ax=ax, format=matplotlib.ticker.PercentFormatter(1.0))
    out["Cohort retention"] = _png(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    x = pd.to_datetime(rates["period_start"])
    ax.plot(x, rates["churn_rate"], marker="o", label="churn rate")
    ax.plot(x, rates["retention_rate"], marker="o", label="retention rate")
    ax.plot(x, rates["reactivated_share"], marker=".", ls=":", label="reactivated share")
    ax.set(title="Churn and retention per period (period = the churn horizon)", ylim=(0, 1))
    ax.legend()
    out["Churn and retention over time"] = _png(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    x = pd.to_datetime(pvr["cutoff"])
    ax.plot(x, pvr["predicted_churn_rate"], marker="o", label="predicted (champion)")
    ax.plot(x, pvr["realized_churn_rate"], marker="o", label="realized (label)")
    ax.set(title="Predicted vs realized churn rate per past cutoff", ylim=(0, 1))
    ax.legend()
    out["Predicted vs realized churn"] = _png(fig)

    order = segments.index.tolist()
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(order) + 1.5), sharey=True)
    positions = np.arange(len(order))
    axes[0].boxplot(
        [scores.loc[scores["segment"] == s, "churn_probability"] for s in order],
        positions=positions,
        vert=False,
    )
    axes[0].set_yticks(positions, order)
    axes[0].set(title="Churn risk by segment", xlabel="churn probability")
    axes[1].barh(positions, segments["value_at_risk"])
    axes[1].set(title="Value at risk by segment", xlabel=f"expected value lost ({currency})")
    axes[1].xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:,.0f}k"))
    axes[0].invert_yaxis()
    fig.tight_layout()
    out["Risk and value at risk by segment"] = _png(fig)
    return out


def cohort_text(cohorts: pd.DataFrame) -> pd.DataFrame:
    """The cohort matrix as text: cohort sizes with separators, shares as whole percentages (a
    month not over yet stays blank)."""
    out = cohorts.drop(columns="customers").apply(lambda c: c.map(lambda v: "" if pd.isna(v) else f"{v:.0%}"))
    out.insert(0, "customers", cohorts["customers"].map("{:,.0f}".format))
    return out


UPLIFT_TITLE = "Uplift: whom outreach changes"


def uplift_section(folder: Path, currency: str) -> tuple[dict, dict, dict, dict]:
    """From `churn uplift`'s folder: summary cards (how the list is ranked, weeks of outcomes so
    far), the policy values with their intervals and the deciles as tables, the Qini curve as a
    figure; or why they cannot be shown yet."""
    decision = read_json(Path(folder) / DECISION_FILE)
    cards = {
        "outreach list ranked by": decision["ranking"].replace("_", " "),
        "weeks of outcomes for uplift": f"{decision['weeks']:,}",
    }
    if "policy_value_per_week" not in decision:
        return cards, {}, {}, {UPLIFT_TITLE: decision["why"]}
    look = decision["look"]
    cards["switch rule"] = f"look {look['number']}: {look['z']:.2f} standard errors above zero"
    values = pd.DataFrame(
        [
            {
                "estimate": name.replace("_", " "),
                f"uplift top-k ({currency}/week)": c["uplift"]["value"],
                f"value-at-risk top-k ({currency}/week)": c["value_at_risk"]["value"],
                "difference": c["difference"]["value"],
                "95% CI low": c["difference"]["ci_low"],
                "95% CI high": c["difference"]["ci_high"],
                "switch rule's lower bound": c["switch_low"],
            }
            for name, c in decision["policy_value_per_week"].items()
        ]
    ).set_index("estimate")
    tables = {f"{UPLIFT_TITLE}: incremental retained value per week, net of contact cost": values}
    images = {}
    if (deciles := Path(folder) / "deciles.csv").exists():
        tables["Predicted vs realized uplift by decile"] = pd.read_csv(deciles).set_index("decile")
    if (qini := Path(folder) / "qini.csv").exists():
        curve = pd.read_csv(qini)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(curve["share"], curve["gain"], label="uplift ranking")
        ax.plot(curve["share"], curve["random"], ls="--", color="grey", label="random")
        ax.set(
            xlabel="share contacted (latest judged period)",
            ylabel="cumulative uplift per customer",
            title=f"Qini {decision['qini']['qini']:.4f}; ranked by {cards['outreach list ranked by']}",
        )
        ax.legend()
        images[f"{UPLIFT_TITLE}: Qini curve"] = _png(fig)
    return cards, tables, images, {}


def _embed(path: Path) -> str | None:
    return base64.b64encode(path.read_bytes()).decode("ascii") if path.exists() else None


def render_html(
    title: str,
    summary: dict,
    tables: dict[str, pd.DataFrame],
    images: dict[str, str],
    missing: dict[str, str] | None = None,
) -> str:
    """One page: the summary cards, the figures, the tables (each in its own horizontal scroll
    box, so no table widens the page), and for each section that could not be drawn, why."""
    cards = "".join(
        f"<div class='card'><div class='v'>{html.escape(str(v))}</div>"
        f"<div class='k'>{html.escape(k)}</div></div>"
        for k, v in summary.items()
    )
    body = [f"<h1>{html.escape(title)}</h1>", f"<div class='cards'>{cards}</div>"]
    for name, data in images.items():
        body.append(
            f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
        )
    for name, table in tables.items():
        body.append(
            f"<h2>{html.escape(name)}</h2><div class='scroll'>"
            + table.to_html(float_format=lambda v: f"{v:,.3f}", na_rep="", border=0, classes="t")
            + "</div>"
        )
    for name, why in (missing or {}).items():
        body.append(f"<h2>{html.escape(name)}</h2><p class='missing'>Not shown: {html.escape(why)}</p>")
    head = f"<meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>"
    return f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(body)}</body></html>\n"


def main(
    params_path: Path,
    transactions: Path,
    snapshots_path: Path,
    snapshot_path: Path,
    scores_dir: Path,
    model_dir: Path,
    fits: Path,
    plots_dir: Path,
    run_path: Path,
    out_dir: Path,
    metrics_out: Path,
    headline_out: Path | None = None,
    evaluation_path: Path | None = None,
    backtest_path: Path | None = None,
    uplift_dir: Path | None = None,
) -> dict:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    currency = params.score.currency
    feat = read_record(fits, Fits)
    horizon, lookback = feat.schedule.horizon_days, feat.schedule.eligibility_lookback_days
    orders = orders_of(ibis.duckdb.connect().read_parquet(str(transactions)))
    score_date = pd.Timestamp(feat.score_date)
    cutoffs = [pd.Timestamp(c) for c in feat.cutoffs]
    rates = period_rates(orders=orders, starts=cutoffs, horizon_days=horizon, lookback_days=lookback)
    cohorts = cohort_matrix(orders, score_date)
    files = sorted(Path(scores_dir).glob("churn_scores_*.csv"))
    scores = read_table(files[-1], SCORE_FILE_SCHEMA)
    previous = read_table(files[-2], SCORE_FILE_SCHEMA) if len(files) > 1 else None
    snapshot = pd.read_parquet(snapshot_path)
    segments = segment_table(scores, snapshot)
    movement = segment_movement(scores, previous)
    train_summary = read_json(Path(model_dir) / SUMMARY_FILE)
    trained_on = train_summary.get("scoring_cutoffs", train_summary["train_cutoffs"])
    pvr = predicted_vs_realized(each_snapshot_file(snapshots_path), ChurnModel.load(model_dir), trained_on)
    last_value, last_frequency = last_year_activity(orders, since=score_date - 365 * DAY)
    summary = {
        "as of": score_date.date().isoformat(),
        "customers scored": f"{len(scores):,}",
        "churn rate, last closed period": f"{rates['churn_rate'].iloc[-1]:.1%}",
        "retention rate, last closed period": f"{rates['retention_rate'].iloc[-1]:.1%}",
        "predicted churn, next period": f"{scores['churn_probability'].mean():.1%}",
        "value at risk": money(scores["value_at_risk"].sum(), currency),
        "average order value (last year)": money(last_value, currency),
        "orders per customer (last year)": f"{last_frequency:.2f}",
        "on the outreach list": f"{int(scores['outreach'].sum()):,} ("
        f"{int(scores['holdout'].sum())} held out)",
    }
    images = figures(
        rates=rates, cohorts=cohorts, scores=scores, pvr=pvr, segments=segments, currency=currency
    )
    missing: dict[str, str] = {}
    for name, file, stage in (
        (
            "Model vs baselines: ROC, precision-recall, reliability, lift",
            "evaluate/evaluation.png",
            "evaluate",
        ),
        ("What drives churn (SHAP)", "explain/shap_beeswarm.png", "explain"),
        ("Top drivers (mean |SHAP|)", "explain/shap_bar.png", "explain"),
    ):
        if (data := _embed(Path(plots_dir) / file)) is not None:
            images[name] = data
        else:
            missing[name] = f"{Path(plots_dir) / file} does not exist (dvc repro {stage} makes it)"
    tables = {"Segments": formatted_segments(segments, currency)}
    compared = "Model vs baselines on the held-out cutoff"
    if evaluation_path is not None:
        backtest = read_json(backtest_path) if backtest_path is not None else None
        tables[compared] = model_vs_baselines(read_json(evaluation_path), backtest)
    else:
        missing[compared] = "the report was made without evaluate's metrics (churn report --evaluation)"
    tables |= {
        "Churn and retention per period": rates.set_index("period_start"),
        "Predicted vs realized churn per cutoff": pvr.set_index("cutoff"),
        "Cohort retention (share ordering in month k)": cohort_text(cohorts),
    }
    if uplift_dir is not None:
        cards, uplift_tables, uplift_images, uplift_missing = uplift_section(uplift_dir, currency)
        summary |= cards
        tables |= uplift_tables
        images |= uplift_images
        missing |= uplift_missing
    else:
        missing[UPLIFT_TITLE] = "the report was made without churn uplift's folder (churn report --uplift)"
    movement_title = "Segment movement since last week (customers)"
    if movement is not None:
        tables[movement_title] = movement
    else:
        missing[movement_title] = (
            f"{files[-1].name} is the only weekly file in {scores_dir}; "
            "movement needs last week's file beside it"
        )
    title = f"Churn and retention report, {score_date.date().isoformat()}"
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "report.html") as tmp:
        tmp.write_text(
            render_html(title=title, summary=summary, tables=tables, images=images, missing=missing),
            encoding="utf-8",
        )
    lines = [f"**{title}**", ""] + [f"- {k}: {v}" for k, v in summary.items()]
    top = segments.head(3)
    lines += [
        "",
        "Most value at risk: "
        + "; ".join(
            f"{s} ({int(r.customers):,} customers, {money(r.value_at_risk, currency)})"
            for s, r in top.iterrows()
        ),
    ]
    with atomic_path(out_dir / "summary.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_csv(rates.round(6), out_dir / "rates.csv")
    write_csv(pvr, out_dir / "predicted_vs_realized.csv")
    metrics = {
        "churn_rate_last_period": round(float(rates["churn_rate"].iloc[-1]), 6),
        "retention_rate_last_period": round(float(rates["retention_rate"].iloc[-1]), 6),
        "predicted_churn_rate": round(float(scores["churn_probability"].mean()), 6),
        "value_at_risk": round(float(scores["value_at_risk"].sum()), 2),
        "segments": {k: int(v) for k, v in segments["customers"].items()},
    }
    write_json(metrics, metrics_out)
    write_headline({"churn_rate": float(rates["churn_rate"].iloc[-1])}, headline_out)
    tracking.configure(params.mlflow.experiment)
    with mlflow.start_run(run_id=tracking.run_id_for(read_json(run_path))):
        mlflow.log_artifact(str(out_dir / "report.html"), "report")
        mlflow.log_artifact(str(out_dir / "summary.md"), "report")
    log.info("report: %s", out_dir / "report.html")
    return metrics
