"""Benchmark: does the uplift ranking find whom a contact changes, and does its policy-value estimate
cover the truth? On many weeks of simulated files whose effect per customer is known
(`followup.play_weeks`, docs/uplift.md).

Per seed: the simulated outcome table of `--weeks` calendar weeks on the customers of a score file
(`--replicas` times over), the uplift learner(s) judged by rolling origin, each kept week after the
first by the learner fitted on the weeks before it (`uplift.evaluate`). Prints, per seed and learner:
- the Qini of the learner's ranking on the latest judged week (and on every judged week pooled),
  scored on the true effects, as a share of the true effects' own Qini;
- the doubly robust (and inverse-propensity) estimate of the incremental value per week of the
  uplift policy minus the value-at-risk policy, its 95% interval, the true difference, and whether
  the interval covers it;
- the true incremental value per week of each policy.
With `--switch`, every look of the switch rule on each seed's history, and the first look at which
it fires, beside a plain 95% interval checked at every look; `--effects risk --jitter 0` plays
effects that follow churn risk, where value at risk is the best ranking and any switch is wrong.

    python benchmarks/uplift.py --scores data/scores/churn_scores_2026-W47.csv --seeds 100
    python benchmarks/uplift.py --scores ... --seeds 10 --switch --weeks 156
    python benchmarks/uplift.py --scores ... --seeds 10 --switch --weeks 156 --effects risk --jitter 0
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.commands.followup import PlantedEffects, RiskEffects, play_weeks, population
from pipeline.core.params import ScoreParams, load_params
from pipeline.core.uplift import Evaluation, evaluate, last_look, pooled, qini_coefficient, rolling

EFFECTS = {"planted": PlantedEffects(), "risk": RiskEffects()}


def _true_value(
    contacts: np.ndarray, effect: np.ndarray, value: np.ndarray, cost: float, weeks: int
) -> float:
    return float((contacts * (effect * value - cost)).sum() / weeks)


def score_params(args: argparse.Namespace) -> ScoreParams:
    params = load_params(args.params).score
    if args.exploration_budget is not None:
        params = params.model_copy(update={"exploration_budget": args.exploration_budget})
    if args.exploration_even_share is not None:
        params = params.model_copy(update={"exploration_even_share": args.exploration_even_share})
    return params


def simulated(args: argparse.Namespace, seed: int) -> tuple[ScoreParams, pd.DataFrame, pd.DataFrame]:
    """The score params, and the seed's simulated outcome table with its truth."""
    params = score_params(args)
    scores, snapshot = population(args.scores, args.replicas)
    table, truth = play_weeks(
        customers=scores,
        snapshot=snapshot,
        params=params,
        weeks=args.weeks,
        seed=seed,
        effects=EFFECTS[args.effects],
        jitter=args.jitter,
    )
    return params, table, truth


def true_values(ev: Evaluation, truth: pd.DataFrame, cost: float) -> tuple[float, float]:
    """The true incremental value per week of the uplift and the value-at-risk policy on the test
    weeks of `ev`."""
    true = truth.loc[ev.test.index]
    tau, value = true["true_uplift"].to_numpy(), ev.test["predicted_value"].to_numpy(dtype=float)
    w = len(ev.test_weeks)
    return (
        _true_value(ev.uplift_contacts, tau, value, cost, w),
        _true_value(ev.value_at_risk_contacts, tau, value, cost, w),
    )


def qini_ratio(predicted: np.ndarray, tau: np.ndarray) -> float:
    """The Qini of a ranking scored on the true effects, as a share of the true effects' own."""
    return qini_coefficient(predicted, tau)["qini"] / qini_coefficient(tau, tau)["qini"]


def one_seed(args: argparse.Namespace, seed: int) -> list[dict]:
    params, table, truth = simulated(args, seed)
    out = []
    for learner in args.learners:
        started = time.perf_counter()
        ev = evaluate(table, budget=params.contact_budget * args.replicas, cost=args.cost, learner=learner)
        true_u, true_v = true_values(ev, truth, args.cost)
        w = len(ev.test_weeks)
        tau = truth.loc[ev.test.index, "true_uplift"].to_numpy()
        latest_tau = truth.loc[ev.latest.test.index, "true_uplift"].to_numpy()
        d, di = ev.comparison.difference, ev.ipw_comparison.difference
        out.append(
            {
                "seed": seed,
                "learner": learner,
                "rows": len(table),
                "train_weeks": len(ev.train_weeks),
                "test_weeks": w,
                # the ranking the file would use: the latest judged period, by the learner fitted
                # on every period before it; and every judged period pooled
                "qini_ratio": qini_ratio(ev.latest.effect, latest_tau),
                "qini_ratio_pooled": qini_ratio(ev.effect, tau),
                "qini_realized": ev.qini["qini"],
                "true_uplift_policy": true_u,
                "true_value_at_risk_policy": true_v,
                "true_difference": true_u - true_v,
                "dr_difference": d.value,
                "dr_low": d.low,
                "dr_high": d.high,
                "dr_covers": d.low <= true_u - true_v <= d.high,
                "dr_uplift_covers": ev.comparison.uplift.low <= true_u <= ev.comparison.uplift.high,
                "ipw_difference": di.value,
                "ipw_low": di.low,
                "ipw_high": di.high,
                "ipw_covers": di.low <= true_u - true_v <= di.high,
                "switch": ev.comparison.switch,
                "excluded_deciles": ev.excluded_deciles,
                "seconds": time.perf_counter() - started,
            }
        )
    return out


def switch_weeks(args: argparse.Namespace, seed: int) -> dict:
    """Every look of the switch rule on one simulated history (look j: the first j + 2 kept weeks
    in the table, j + 1 of them used; each kept week is one period), and the first look at which
    each rule fires: the sequential bound (`uplift.Look`) and a plain 95% interval at every look.
    Calendar weeks count to the close of the window of the latest kept week in the table."""
    params, table, truth = simulated(args, seed)
    weeks = sorted(table["week"].unique())
    step = math.ceil(int(table["horizon_days"].iloc[0]) / 7)
    # every look's judged periods are a prefix of the last look's: judged once, pooled per look
    judged, _, first = rolling(table, budget=params.contact_budget * args.replicas, cost=args.cost)
    looks = []
    for k in range(3, len(weeks) + 1):
        _, look = last_look(table[table["week"].isin(weeks[:k])])
        mine = [j for j in judged if j.period <= look.number]
        ev = pooled(mine, learner="x", look=look, train_weeks=first, cost=args.cost)
        d = ev.comparison.difference
        true_u, true_v = true_values(ev, truth, args.cost)
        looks.append(
            {
                "look": ev.look.number,
                "calendar_weeks": k * step,
                "difference": round(d.value, 1),
                "se": round(d.se, 1),
                "z": round(ev.look.z, 4),
                "true_difference": round(true_u - true_v, 1),
                "dr_covers": bool(d.low <= true_u - true_v <= d.high),
                "sequential": ev.comparison.switch,
                "plain": bool(d.low > 0),
            }
        )
    latest_tau = truth.loc[ev.latest.test.index, "true_uplift"].to_numpy()

    def first(rule: str) -> dict | None:
        return next(
            ({"look": x["look"], "calendar_weeks": x["calendar_weeks"]} for x in looks if x[rule]), None
        )

    return {
        "seed": seed,
        "effects": args.effects,
        "sequential": first("sequential"),
        "plain": first("plain"),
        "qini_ratio": round(qini_ratio(ev.latest.effect, latest_tau), 4),  # at the last look
        "looks": looks,
    }


def switch_summary(results: list[dict]) -> None:
    n = len(results)
    print(f"\n{'rule':>12}{'fired':>8}{'median calendar weeks':>24}{'range':>12}")
    for rule in ("sequential", "plain"):
        fired = sorted(r[rule]["calendar_weeks"] for r in results if r[rule])
        median = f"{statistics.median(fired):g}" if fired else "-"
        span = f"{fired[0]}-{fired[-1]}" if fired else "-"
        print(f"{rule:>12}{len(fired):>5}/{n:<2}{median:>24}{span:>12}")
    ratios = [r["qini_ratio"] for r in results]
    print(
        f"Qini ratio at the last look: median {statistics.median(ratios):.3f}, "
        f"{sum(q >= 0.8 for q in ratios)} of {n} at 0.8 or more; the doubly robust interval covers the "
        f"truth at {sum(x['dr_covers'] for r in results for x in r['looks'])} of "
        f"{sum(len(r['looks']) for r in results)} looks"
    )
    wrong = sum(x["true_difference"] <= 0 for r in results for x in r["looks"])
    print(
        f"looks whose true difference is not above zero: {wrong} of {sum(len(r['looks']) for r in results)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=Path, required=True, help="a score file with its kept snapshot")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--weeks", type=int, default=104, help="calendar weeks simulated")
    parser.add_argument("--replicas", type=int, default=1, help="the shop this many times over")
    parser.add_argument("--learners", nargs="+", default=["x"], choices=["t", "x", "dr"])
    parser.add_argument("--cost", type=float, default=1.0, help="cost of a contact, in the currency")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--exploration-budget", type=int, help="score.exploration_budget in the simulation")
    parser.add_argument(
        "--exploration-even-share",
        type=float,
        help="score.exploration_even_share in the simulation (1: every pool member the same chance)",
    )
    parser.add_argument("--switch", action="store_true", help="measure when the switch rule fires")
    parser.add_argument(
        "--effects",
        choices=sorted(EFFECTS),
        default="planted",
        help="planted: the five kinds of customer; risk: effects that follow churn risk (no gain to find)",
    )
    parser.add_argument(
        "--jitter", type=float, default=0.25, help="sd of the weekly log factor of value at risk"
    )
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with ProcessPoolExecutor(args.workers) as pool:
        if args.switch:
            results = []
            for result in pool.map(switch_weeks, [args] * len(seeds), seeds):
                print(json.dumps(result), flush=True)
                results.append(result)
            switch_summary(results)
            return
        rows = [r for batch in pool.map(one_seed, [args] * len(seeds), seeds) for r in batch]
    for r in rows:
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    print(f"\n{'learner':>8}{'seeds':>7}{'Qini ratio (median)':>21}{'DR covers':>11}{'IPW covers':>12}"
          f"{'true U-V > 0':>14}{'switch':>8}{'s/fit':>7}")  # fmt: skip
    for learner in args.learners:
        mine = [r for r in rows if r["learner"] == learner]
        print(
            f"{learner:>8}{len(mine):>7}{float(np.median([r['qini_ratio'] for r in mine])):>21.3f}"
            f"{sum(r['dr_covers'] for r in mine):>11}{sum(r['ipw_covers'] for r in mine):>12}"
            f"{sum(r['true_difference'] > 0 for r in mine):>14}{sum(r['switch'] for r in mine):>8}"
            f"{float(np.median([r['seconds'] for r in mine])):>7.1f}"
        )


if __name__ == "__main__":
    main()
