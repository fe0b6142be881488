"""`churn uplift`: whom outreach changes, learned from the randomized contacts of past weekly files
(the outcome table of `churn outcomes`), judged by rolling origin, and the ranking the file should use.

The learner (`uplift.learner`) is judged by rolling origin: each period of weeks after the first
by the learner fitted on the randomized rows of the periods before it. Over every judged period:
the incremental value per week of contacting the uplift top-k against the value-at-risk top-k, by
doubly robust and inverse-propensity estimates with intervals clustered by customer. On the latest
judged period: Qini/AUUC, predicted against realized uplift by decile and the uplift at the real
budget. The file switches to uplift ranking only when the doubly robust difference is above
zero by the bound of the switch rule's latest look (`uplift.Look`: scheduled looks, one per
horizon, whose false-switch chances add up to at most 2.5%); the model for it is then refitted on
every week and kept in `model/`.
Guardrails per week: churn among the contacted against their controls, on the list and in the
exploration sample. Logged to MLflow and written as JSON, CSV and Markdown.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from pipeline.core import tracking
from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path, write_csv, write_json
from pipeline.core.params import Params, load_params
from pipeline.core.uplift import (
    CLUSTER,
    DECISION_FILE,
    LEARNERS,
    OUTCOME,
    OUTCOME_COLUMNS,
    Boosting,
    Evaluation,
    evaluate,
    fit_dr,
    qini_curve,
    randomized,
    save_learner,
    sleeping_dog_guard,
    training_scores,
)

log = logging.getLogger(__name__)
MODEL_DIR = "model"
CURVE_POINTS = 200


class UpliftError(PipelineError):
    """The outcome table cannot train or judge an uplift model."""


def read_outcomes(path: Path) -> pd.DataFrame:
    table = pd.read_parquet(path)
    missing = [c for c in OUTCOME_COLUMNS if c not in table.columns]
    if missing:
        raise UpliftError(f"{path}: not an outcome table of `churn outcomes`; it lacks {missing}")
    if table.empty:
        raise UpliftError(f"{path}: no customer-weeks")
    return table


def guardrails(table: pd.DataFrame) -> pd.DataFrame:
    """Per week: churn among the contacted and among their randomized controls, on the list
    (contacted vs held out) and in the exploration pool (explored vs not). A contact that
    backfires shows as higher churn among the contacted."""
    rows = []
    for week, part in table.groupby("week", sort=True):
        churn = 1 - part[OUTCOME].to_numpy()
        listed, contact = part["outreach"].to_numpy(bool), part["contact"].to_numpy(bool)
        pool = (part["contact_policy"] == "exploration").to_numpy()

        def rate(mask: np.ndarray, churn: np.ndarray = churn) -> float:
            return round(float(churn[mask].mean()), 6) if mask.any() else float("nan")

        rows.append(
            {
                "week": week,
                "list_contacted": int((listed & contact).sum()),
                "list_churn_contacted": rate(listed & contact),
                "list_churn_held_out": rate(listed & ~contact),
                "explored": int((pool & contact).sum()),
                "pool_churn_explored": rate(pool & contact),
                "pool_churn_not_explored": rate(pool & ~contact),
            }
        )
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame, params: Params) -> tuple[dict, Evaluation | None]:
    """What the outcome table holds, the learner's evaluation by time, and the ranking decided."""
    weeks = sorted(table["week"].unique())
    rows = randomized(table)
    summary: dict = {
        "weeks": len(weeks),
        "first_week": weeks[0],
        "last_week": weeks[-1],
        "customer_weeks": len(table),
        "randomized_rows": len(rows),
        "contacted_randomized": int(rows["contact"].sum()),
        "learner": params.uplift.learner,
        "contact_cost": params.uplift.contact_cost,
        "budget": params.score.contact_budget,
        "ranking": "value_at_risk",
    }
    try:
        ev = evaluate(
            table,
            budget=params.score.contact_budget,
            cost=params.uplift.contact_cost,
            learner=params.uplift.learner,
        )
    except ValueError as exc:
        summary["why"] = f"no evaluation: {exc}"
        return summary, None
    difference = ev.comparison.difference
    look = ev.look
    verdict = (
        "above zero at this look's bound: switch"
        if ev.comparison.switch
        else "not surely above zero yet at this look's bound"
    )
    summary |= {
        "look": look.as_dict(),
        "train_weeks": ev.train_weeks,
        "test_weeks": ev.test_weeks,
        "latest_judged_weeks": sorted(ev.latest.test["week"].unique()),
        "policy_value_per_week": {
            "doubly_robust": ev.comparison.as_dict(),
            "inverse_propensity": ev.ipw_comparison.as_dict(),
        },
        "qini": {k: round(v, 6) for k, v in ev.qini.items()},
        "uplift_at_budget": ev.at_budget.as_dict(),
        "excluded_deciles": ev.excluded_deciles,
        "ranking": "uplift" if ev.comparison.switch else "value_at_risk",
        "why": (
            f"uplift top-k beats value-at-risk top-k by {difference.value:,.0f} a week "
            f"(95% CI {difference.low:,.0f} to {difference.high:,.0f}); look {look.number} of the "
            f"switch rule ({len(look.weeks)} weeks, through {look.weeks[-1]}) asks for "
            f"{look.z:.2f} standard errors above zero, lower bound {ev.comparison.switch_low:,.0f}: "
            f"{verdict}"
        ),
    }
    return summary, ev


def markdown(summary: dict, deciles: pd.DataFrame | None, guards: pd.DataFrame, currency: str) -> str:
    lines = [
        "## Uplift: whom outreach changes",
        "",
        f"{summary['weeks']} week(s) of outcomes ({summary['first_week']} to {summary['last_week']}), "
        f"{summary['randomized_rows']:,} randomized customer-weeks, {summary['contacted_randomized']:,} "
        f"of them contacted. The file ranks by **{summary['ranking'].replace('_', ' ')}**: {summary['why']}.",
        "",
    ]
    if "policy_value_per_week" in summary:
        lines += [
            f"Judged on {len(summary['test_weeks'])} week(s), each by the model learned from the "
            f"periods before its own (the first period's {len(summary['train_weeks'])} week(s) "
            "only learned from). Incremental retained value per week, "
            f"net of {summary['contact_cost']} {currency} a contact, "
            f"at a budget of {summary['budget']:,} contacts:",
            "",
            "| estimate | uplift top-k | value-at-risk top-k | difference (95% CI) |",
            "|---|---:|---:|---|",
        ]
        for name, c in summary["policy_value_per_week"].items():
            d, u, v = c["difference"], c["uplift"]["value"], c["value_at_risk"]["value"]
            lines.append(
                f"| {name.replace('_', ' ')} | {u:,.0f} | {v:,.0f} "
                f"| {d['value']:,.0f} ({d['ci_low']:,.0f} to {d['ci_high']:,.0f}) |"
            )
        q, look = summary["qini"], summary["look"]
        lines += [
            "",
            f"Switch rule: look {look['number']} (weeks through {look['through_week']}, periods of "
            f"{look['period_weeks']} weeks) asks the doubly robust difference to be {look['z']:.2f} "
            f"standard errors above zero (one-sided level {look['alpha']:.2g}; every look together "
            "switches wrongly with chance at most 2.5%).",
            "",
            f"Qini {q['qini']:.5f}, AUUC {q['auuc']:.5f} (doubly robust gains on the latest judged "
            f"period, {summary['latest_judged_weeks'][0]} to {summary['latest_judged_weeks'][-1]}, "
            "ranked by the learner fitted on the periods before it). "
            f"Sleeping-dog deciles never contacted: {summary['excluded_deciles'] or 'none'}.",
            "",
        ]
    if deciles is not None:
        lines += [
            "### Predicted against realized uplift, by decile",
            "",
            deciles.to_markdown(index=False, floatfmt=(".0f", ".0f", ".4f", ".4f", ".4f", ".4f")),
            "",
        ]
    lines += [
        "### Guardrails per week (churn rates)",
        "",
        guards.to_markdown(index=False, floatfmt=".4f"),
        "",
    ]
    return "\n".join(lines)


def main(params_path: Path, outcomes: Path, out_dir: Path) -> str:
    params = load_params(params_path)
    table = read_outcomes(outcomes)
    summary, ev = summarize(table, params)
    out_dir = Path(out_dir)
    guards = guardrails(table)
    write_csv(guards, out_dir / "guardrails.csv")
    deciles = None
    if ev is not None:
        deciles = ev.deciles.round(6)
        write_csv(deciles, out_dir / "deciles.csv")
        curve = qini_curve(ev.latest.effect, ev.latest.gamma)
        step = max(1, len(curve) // CURVE_POINTS)
        write_csv(
            pd.concat([curve.iloc[::step], curve.iloc[[-1]]]).drop_duplicates().round(6), out_dir / "qini.csv"
        )
    if summary["ranking"] == "uplift":
        # the model the file ranks by learns from every week, and its guard from all their rows
        rows = randomized(table)
        boosting = Boosting()
        gamma = training_scores(rows, boosting)
        final = (
            fit_dr(rows, boosting, scores=gamma)
            if params.uplift.learner == "dr"
            else LEARNERS[params.uplift.learner](rows, boosting)
        )
        save_learner(final, out_dir / MODEL_DIR)
        summary["model"] = MODEL_DIR
        summary["guard"] = sleeping_dog_guard(final.effect(rows), gamma, rows[CLUSTER]).as_dict()
    write_json(summary, out_dir / DECISION_FILE)
    with atomic_path(out_dir / "uplift.md") as tmp:
        text = markdown(summary=summary, deciles=deciles, guards=guards, currency=params.score.currency)
        tmp.write_text(text, encoding="utf-8")
    tracking.configure(params.mlflow.experiment)
    with mlflow.start_run(run_name=f"uplift-{summary['last_week']}"):
        mlflow.set_tags({"kind": "uplift", "ranking": summary["ranking"], "learner": params.uplift.learner})
        mlflow.log_metrics(
            {"uplift/weeks": summary["weeks"]}
            | tracking.flat_metrics(summary.get("policy_value_per_week", {}), "uplift/policy")
            | tracking.flat_metrics(summary.get("qini", {}), "uplift/qini")
        )
        mlflow.log_artifacts(str(out_dir), "uplift")
    log.info("uplift: %s weeks, ranking %s (%s)", summary["weeks"], summary["ranking"], summary["why"])
    return f"{out_dir}: ranking {summary['ranking']}: {summary['why']}"
