"""Who to contact, with what, and who to hold out: customer value, value at risk, segments,
campaigns, the outreach list and its randomized holdout. Rules and thresholds come from
`score` params; every function here is a pure function of the scoring snapshot and the churn
probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.core.btyd import WEEK_DAYS, GammaGamma, ParetoNBD, Summary
from pipeline.core.params import ScoreParams
from pipeline.core.privacy import keyed_digest

LIFECYCLE_LABELS = {
    "new": "new",
    "active": "active",
    "at_risk": "at-risk",
    "lapsed": "lapsed",
    "reactivated": "reactivated",
}


def predicted_value(snapshot: pd.DataFrame, pnbd: ParetoNBD, horizon_days: int) -> pd.DataFrame:
    """Expected orders over the value horizon (Pareto/NBD, fitted at the scoring date) times the
    expected value of an order (Gamma-Gamma on every customer's order count and mean order value,
    fitted on this snapshot). Undiscounted, in the currency of the amounts."""
    n = snapshot["n_orders"].to_numpy(dtype=float)
    mean_value = snapshot["avg_order_value"].to_numpy(dtype=float)
    summary = Summary.from_days(n, snapshot["recency_days"], snapshot["tenure_days"])
    orders = pnbd.expected_orders(summary, horizon_days / WEEK_DAYS)
    positive = mean_value > 0
    spend = GammaGamma.fit(n[positive], mean_value[positive])
    per_order = np.where(positive, spend.expected_value(n, np.where(positive, mean_value, 1.0)), 0.0)
    return pd.DataFrame(
        {"expected_orders": orders, "expected_order_value": per_order, "value": orders * per_order}
    )


def value_tiers(value: np.ndarray, params: ScoreParams) -> np.ndarray:
    """high for the top `value_tiers.high` share by predicted value, mid for the next
    `value_tiers.mid`, low for the rest. Ties are broken by position, so shares are exact."""
    order = np.argsort(-np.asarray(value), kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    n = len(order)
    high = round(params.value_tiers.high * n)
    mid = high + round(params.value_tiers.mid * n)
    return np.where(rank < high, "high", np.where(rank < mid, "mid", "low"))


def lifecycle_stages(snapshot: pd.DataFrame, risk_tier: np.ndarray, params: ScoreParams) -> np.ndarray:
    """In order of precedence: lapsed (no order for more than `lapsed_days`), new (first order
    within `new_customer_days`), at_risk (high churn risk tier), reactivated (the latest order
    ended a wait longer than `lapsed_days`), active."""
    recency = snapshot["recency_days"].to_numpy(dtype=float)
    tenure = snapshot["tenure_days"].to_numpy(dtype=float)
    gap_last = (
        snapshot["gap_last"].to_numpy(dtype=float)
        if "gap_last" in snapshot
        else np.full(len(recency), np.nan)
    )
    return np.select(
        [
            recency > params.lapsed_days,
            tenure <= params.new_customer_days,
            risk_tier == "high",
            np.nan_to_num(gap_last, nan=0.0) > params.lapsed_days,
        ],
        ["lapsed", "new", "at_risk", "reactivated"],
        default="active",
    )


def segment_names(value_tier: np.ndarray, lifecycle: np.ndarray) -> np.ndarray:
    """ "High-value at-risk", "Low-value new", ..."""
    return np.array(
        [f"{v.capitalize()}-value {LIFECYCLE_LABELS[s]}" for v, s in zip(value_tier, lifecycle, strict=True)]
    )


def campaigns(
    lifecycle: np.ndarray, value_tier: np.ndarray, risk_tier: np.ndarray, params: ScoreParams
) -> np.ndarray:
    """The first rule in `score.campaigns` whose conditions all hold (the last has none)."""
    out = np.full(len(lifecycle), "", dtype=object)
    for rule in reversed(params.campaigns):  # earlier rules overwrite later ones
        hit = np.ones(len(lifecycle), dtype=bool)
        for allowed, values in (
            (rule.lifecycle, lifecycle),
            (rule.value_tier, value_tier),
            (rule.risk_tier, risk_tier),
        ):
            if allowed:
                hit &= np.isin(values, allowed)
        out[hit] = rule.campaign
    return out.astype(str)


def holdout_draw(customer_ids: pd.Series, week: str, key: str) -> np.ndarray:
    """A uniform number in [0, 1) per customer from HMAC-SHA256(key, week | customer id): stable for
    a customer within a campaign week, independent across weeks, unguessable without the key."""
    secret = key.encode()
    draws = [int.from_bytes(keyed_digest(secret, f"{week}|{cid}")[:8], "big") / 2**64 for cid in customer_ids]
    return np.asarray(draws, dtype=float)


def outreach_plan(
    customer_ids: pd.Series,
    value_at_risk: np.ndarray,
    campaign: np.ndarray,
    risk_tier: np.ndarray,
    week: str,
    params: ScoreParams,
    suppressed: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The outreach list: of the customers with a campaign and a risk tier in `outreach_tiers`,
    the `contact_budget` with the highest value at risk (rank 1 = first to call). A valuable
    customer at low risk is not on it, so no one is called "at risk" below the tiers asked for.
    With `allowed`, the list is the customers with a campaign among `allowed` instead of the
    tiers, ranked by the `value_at_risk` argument (the uplift ranking passes its net gain).
    Of the list, exactly round(holdout_share x size) customers, those with the lowest holdout
    draws, are held out: on the list, never contacted, so that the list's realized retention can
    be compared with theirs. Suppressed (do-not-contact) customers are never on the list."""
    n = len(customer_ids)
    eligible = (campaign != params.no_campaign) & (
        np.isin(risk_tier, params.outreach_tiers) if allowed is None else np.asarray(allowed, dtype=bool)
    )
    if suppressed is not None:
        eligible &= ~suppressed
    # highest value at risk first; ties by customer id, so the list does not depend on row order
    order = np.lexsort((customer_ids.to_numpy(dtype=str), -np.asarray(value_at_risk)))
    order = order[eligible[order]][: params.contact_budget]
    rank = np.zeros(n, dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    outreach = rank > 0
    holdout = np.zeros(n, dtype=bool)
    draws = holdout_draw(customer_ids.iloc[order], week, params.holdout_key)
    held = order[np.argsort(draws, kind="stable")[: round(params.holdout_share * len(order))]]
    holdout[held] = True
    return outreach, holdout, rank


# who chose a row for contact (the file's `contact_policy`): the list ranked by value at risk or
# by uplift, the exploration sample's pool, nobody
LIST_POLICY, UPLIFT_POLICY, EXPLORATION_POLICY, NO_POLICY = "value_at_risk", "uplift", "exploration", "none"


@dataclass(frozen=True)
class Exploration:
    """The week's randomized exploration sample below the list's cut-off, and every row's chance
    of contact. `contact_probability` is exact: the list is chosen deterministically and its
    holdout is exactly round(holdout_share x L) of its L rows drawn at random, so a list row is
    contacted with probability 1 - H / L; the exploration sample is exactly k of the N customers
    below the cut-off who have a campaign and are not suppressed, each contacted with its own
    probability (`exploration_chances`, adding up to k); every other row with 0."""

    contacted: np.ndarray  # the exploration sample (bool)
    contact_probability: np.ndarray
    policy: np.ndarray  # LIST_POLICY, EXPLORATION_POLICY or NO_POLICY per row


def exploration_chances(value: np.ndarray, k: int, even_share: float) -> np.ndarray:
    """Each pool member's chance of exploration, adding up to k: `even_share` of it spread evenly,
    the rest in proportion to predicted value, no chance above 1 (a capped member's excess goes to
    the others in the same proportions).

    Why by value: every estimate of a policy's incremental value weights a customer's outcome by
    their predicted value and divides it by their chance of contact, so its variance is about
    sum v_i^2 / p_i over the contacted, least for p_i proportional to v_i (the textbook
    probability-proportional-to-size design). With the sample's long-tailed values (coefficient of
    variation 1.8 in the pool), half the chance by value gave a standard error of the policy
    difference 0.58 times the even draw's after three simulated years (docs/uplift.md).
    The even part keeps every member's chance at least `even_share` x k / N, so no weight is
    more than 1 / `even_share` times the even draw's and the uplift model still sees low-value
    customers contacted."""
    value = np.clip(np.nan_to_num(np.asarray(value, dtype=float), nan=0.0), 0.0, None)
    n = len(value)
    if n == 0 or k == 0:
        return np.zeros(n)
    total = value.sum()
    share = value / total if total > 0 else np.full(n, 1.0 / n)
    weight = even_share / n + (1.0 - even_share) * share
    chance = np.zeros(n)
    capped = np.zeros(n, dtype=bool)
    while True:
        free = ~capped
        chance[free] = (k - capped.sum()) * weight[free] / weight[free].sum()
        over = free & (chance >= 1.0)
        if not over.any():
            break
        capped |= over
        chance[capped] = 1.0
    return chance


def systematic_draw(chance: np.ndarray, order: np.ndarray, start: float) -> np.ndarray:
    """Systematic sampling with unequal probabilities: the members laid end to end in `order`,
    each over a stretch as long as its chance, and the points start, start + 1, ... picked. Each
    member is picked with exactly its chance (for a start uniform in [0, 1)), and exactly
    round(sum of chances) are picked. numpy's weighted `choice` without replacement does neither
    (its inclusion chances are not the weights), hence this."""
    picked = np.zeros(len(chance), dtype=bool)
    if len(chance) == 0:
        return picked
    total = round(float(chance.sum()))
    # the last stretch ends exactly at the total, so rounding never adds or drops a point
    ends = np.minimum(np.cumsum(chance[order]), total)
    ends[-1] = total
    begins = np.concatenate([[0.0], ends[:-1]])
    picked[order] = np.ceil(ends - start) > np.ceil(begins - start)
    return picked


def exploration_sample(
    customer_ids: pd.Series,
    outreach: np.ndarray,
    holdout: np.ndarray,
    campaign: np.ndarray,
    week: str,
    params: ScoreParams,
    value: np.ndarray | None = None,
    suppressed: np.ndarray | None = None,
    list_policy: str = LIST_POLICY,
) -> Exploration:
    """k = min(`exploration_budget`, round(`exploration_share` x N)) of the N customers off the
    outreach list who have a campaign and are not suppressed, each with the chance
    `exploration_chances` gives them by predicted `value` (evenly without it): a systematic draw
    over the members in the order of their keyed draws (HMAC of `holdout_key`, "explore", the
    week and the id; independent of the holdout's draws), from a keyed start. Reproducible from the
    key, and independent of row order."""
    n = len(customer_ids)
    pool = ~outreach & (campaign != params.no_campaign)
    if suppressed is not None:
        pool &= ~suppressed
    members = np.flatnonzero(pool)
    k = min(params.exploration_budget, round(params.exploration_share * len(members)))
    member_ids = customer_ids.iloc[members]
    draws = holdout_draw(member_ids, f"explore|{week}", params.holdout_key)
    # a random order of the members; ties (never in practice) by customer id
    order = np.lexsort((member_ids.to_numpy(dtype=str), draws))
    start = float(holdout_draw(pd.Series([""]), f"explore-start|{week}", params.holdout_key)[0])
    # without values every member weighs the same, so any even share gives k / N
    chance = exploration_chances(
        value=np.ones(len(members)) if value is None else np.asarray(value, dtype=float)[members],
        k=k,
        even_share=params.exploration_even_share,
    )
    contacted = np.zeros(n, dtype=bool)
    contacted[members] = systematic_draw(chance, order, start)
    probability = np.zeros(n, dtype=float)
    listed = int(outreach.sum())
    if listed:
        probability[outreach] = (listed - int((holdout & outreach).sum())) / listed
    probability[members] = chance
    policy = np.full(n, NO_POLICY, dtype=object)
    policy[outreach] = list_policy
    policy[members] = EXPLORATION_POLICY
    return Exploration(contacted=contacted, contact_probability=probability, policy=policy.astype(str))


@dataclass(frozen=True)
class WeekPlan:
    """A week's decisions: the list, its rank and holdout, the exploration sample and each row's
    chance of contact, and whom to contact: (on the list and not held out) or explored."""

    outreach: np.ndarray
    holdout: np.ndarray
    rank: np.ndarray
    exploration: Exploration

    @property
    def contact(self) -> np.ndarray:
        return (self.outreach & ~self.holdout) | self.exploration.contacted


def plan_week(
    customer_ids: pd.Series,
    priority: np.ndarray,
    value: np.ndarray,
    campaign: np.ndarray,
    risk_tier: np.ndarray,
    week: str,
    params: ScoreParams,
    suppressed: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    list_policy: str = LIST_POLICY,
) -> WeekPlan:
    """The outreach list by `priority` (`outreach_plan`), then the exploration sample below it
    by predicted `value` (`exploration_sample`), as the weekly file makes them."""
    outreach, holdout, rank = outreach_plan(
        customer_ids=customer_ids,
        value_at_risk=priority,
        campaign=campaign,
        risk_tier=risk_tier,
        week=week,
        params=params,
        suppressed=suppressed,
        allowed=allowed,
    )
    exploration = exploration_sample(
        customer_ids=customer_ids,
        outreach=outreach,
        holdout=holdout,
        campaign=campaign,
        week=week,
        params=params,
        value=value,
        suppressed=suppressed,
        list_policy=list_policy,
    )
    return WeekPlan(outreach=outreach, holdout=holdout, rank=rank, exploration=exploration)
