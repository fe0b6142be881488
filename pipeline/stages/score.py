"""Stage score: scoring snapshot + champion + SHAP -> the weekly file for CRM import, and its manifest.

One row per eligible customer, sorted by customer id: churn probability, risk tier and decile,
predicted value and value at risk, segment, three reasons with their weight in probability points
(exact SHAP, for the outreach list or for everyone: `score.reasons_for`), the recommended
campaign, the outreach list and its randomized holdout. The file follows the
published Table Schema (`SCORE_FILE_SCHEMA`, docs/score_file.schema.json), is validated before it
is written, and is published atomically; the manifest, written after it, names its row count,
sha256, schema and model versions, MLflow run, input hashes, as-of date and horizon.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core import manifest
from pipeline.core.btyd import ParetoNBD
from pipeline.core.contributions import contributions
from pipeline.core.cutoffs import iso_week_label
from pipeline.core.errors import PipelineError
from pipeline.core.io import (
    atomic_path,
    csv_bytes,
    permissions_of,
    read_json,
    write_headline,
    write_json,
    write_parquet,
)
from pipeline.core.model import CHAMPION_FILE, SUMMARY_FILE, ChurnModel, label_horizon, risk_deciles
from pipeline.core.outreach import (
    LIST_POLICY,
    UPLIFT_POLICY,
    campaigns,
    lifecycle_stages,
    plan_week,
    predicted_value,
    segment_names,
    value_tiers,
)
from pipeline.core.params import Params, ScoreParams
from pipeline.core.privacy import pseudonym_key, pseudonyms
from pipeline.core.reasons import Reason, top_reasons
from pipeline.core.records import Fits, Verdict, read_record
from pipeline.core.runs import run_kind
from pipeline.core.tables import SCHEMA_VERSION, SCORE_FILE_SCHEMA, SCORES, validate
from pipeline.core.uplift import UpliftRanking, read_ranking

log = logging.getLogger(__name__)


class ScoreError(PipelineError):
    """The snapshot, the champion or the suppression list cannot make this week's file."""


VALID_DAYS = 6  # a weekly file is acted on from its scoring date to the day before the next one


def risk_tiers(p: np.ndarray, params: ScoreParams) -> np.ndarray:
    t = params.risk_tiers
    return np.where(p >= t.high, "high", np.where(p >= t.medium, "medium", "low"))


def score_table(
    snapshot: pd.DataFrame,
    p: np.ndarray,
    explain: Callable[[pd.DataFrame], pd.DataFrame],
    pnbd: ParetoNBD,
    model_version: str,
    params: ScoreParams,
    do_not_contact: AbstractSet[str] = frozenset(),
    uplift: UpliftRanking | None = None,
) -> pd.DataFrame:
    """The score file's rows, in the contract's column order, sorted by customer id. `explain`
    gives the SHAP contributions of the snapshot rows it is passed (in their order); it is called
    for the rows that get reasons (`score.reasons_for`): exact SHAP costs some 30-300 times a
    prediction, so at scale only the outreach list is explained. With `uplift` (once `churn
    uplift` has decided so, docs/uplift.md) the list is the customers with a campaign whose
    predicted uplift x predicted value - contact cost is highest and above zero, sleeping dogs
    left out; otherwise the highest value at risk in the outreach tiers."""
    score_date = pd.Timestamp(snapshot["cutoff"].iloc[0]).date()
    week = iso_week_label(score_date)
    tier = risk_tiers(p, params)
    value = predicted_value(snapshot, pnbd, params.value_horizon_days)["value"].to_numpy()
    at_risk = p * value
    v_tier = value_tiers(value, params)
    stage = lifecycle_stages(snapshot, tier, params)
    campaign = campaigns(lifecycle=stage, value_tier=v_tier, risk_tier=tier, params=params)
    ids = snapshot["customer_id"].astype(str)
    suppressed = ids.isin(do_not_contact).to_numpy()
    effect, priority, allowed = np.full(len(ids), np.nan), at_risk, None
    if uplift is not None:
        effect, priority, allowed = uplift.net_gain(
            snapshot.assign(churn_probability=p, predicted_value=value)
        )
        allowed &= priority > 0
    plan = plan_week(
        customer_ids=ids,
        priority=priority,
        value=value,
        campaign=campaign,
        risk_tier=tier,
        week=week,
        params=params,
        suppressed=suppressed,
        allowed=allowed,
        list_policy=LIST_POLICY if uplift is None else UPLIFT_POLICY,
    )
    outreach, holdout, rank, explore = plan.outreach, plan.holdout, plan.rank, plan.exploration
    explained = np.flatnonzero(outreach) if params.reasons_for == "outreach" else np.arange(len(snapshot))
    rows = snapshot.iloc[explained]
    # once uplift ranks, the reasons are why a contact helps: the uplift model's SHAP values
    uplift_reasons = uplift is not None and uplift.model.explains
    if uplift is not None and uplift_reasons:
        contrib = uplift.model.contributions(
            rows.assign(churn_probability=p[explained], predicted_value=value[explained])
        )
    else:
        contrib = explain(rows)
    if not contrib["customer_id"].reset_index(drop=True).equals(rows["customer_id"].reset_index(drop=True)):
        raise ValueError("SHAP contributions are not aligned with the rows they explain")
    reasons: list[list[Reason]] = [[] for _ in range(len(snapshot))]
    for i, said in zip(
        explained,
        top_reasons(
            contrib=contrib,
            snapshot=rows,
            n=params.n_reasons,
            eligible=params.reason_causes,
            min_points=params.min_reason_points,
            currency=params.currency,
            why="contact" if uplift_reasons else "risk",
        ),
        strict=True,
    ):
        reasons[i] = said
    table = pd.DataFrame(
        {
            "customer_id": ids.to_numpy(),
            "score_date": score_date.isoformat(),
            "valid_until": (score_date + dt.timedelta(days=VALID_DAYS)).isoformat(),
            "horizon_days": label_horizon(snapshot),
            "churn_probability": np.round(p, 6),
            "risk_tier": tier,
            "risk_decile": risk_deciles(p),
            "value_tier": v_tier,
            "lifecycle_stage": stage,
            "segment": segment_names(v_tier, stage),
            "predicted_value": np.round(value, 2),
            "value_at_risk": np.round(at_risk, 2),
        }
    )
    for k in range(3):
        table[f"reason_{k + 1}"] = [r[k].text if k < len(r) else "" for r in reasons]
        table[f"reason_{k + 1}_points"] = [round(r[k].points, 1) if k < len(r) else np.nan for r in reasons]
    table["recommended_campaign"] = campaign
    table["outreach"] = outreach
    table["outreach_rank"] = pd.array([int(r) if r > 0 else None for r in rank], dtype="Int64")
    table["holdout"] = holdout
    table["do_not_contact"] = suppressed
    table["exploration"] = explore.contacted
    table["contact"] = plan.contact
    table["contact_probability"] = np.round(explore.contact_probability, 6)
    table["contact_policy"] = explore.policy
    table["predicted_uplift"] = np.round(effect, 6)
    table["model_version"] = model_version
    table["schema_version"] = SCHEMA_VERSION
    table = table.astype({"horizon_days": "Int64", "risk_decile": "Int64"})
    return table.sort_values("customer_id", kind="stable", ignore_index=True)


def to_csv_bytes(table: pd.DataFrame) -> bytes:
    """The file's exact bytes: the pipeline's CSV form, with booleans as true/false."""
    out = table.copy()
    for column in ("outreach", "holdout", "do_not_contact", "exploration", "contact"):
        out[column] = np.where(table[column], "true", "false")
    return csv_bytes(out)


SUPERSEDED_DIR = "superseded"  # in the scores folder: earlier versions of a week's file
PREVIEW_DIR = "preview"  # under the preview folder: the file an experiment would publish
SUMMARY_NAME = "summary.json"


def _describing_manifest(csv_path: Path, data: bytes) -> dict | None:
    """The manifest beside `csv_path` when it is readable and describes `data`, else None."""
    path = manifest.path_of(csv_path)
    try:
        about = read_json(path)
    except (OSError, ValueError):
        return None
    return about if isinstance(about, dict) and about.get("sha256") == manifest.sha256(data) else None


def keep_earlier(out: Path, earlier: bytes, model_version: str | None, republish: bool) -> Path:
    """Before `out`, whose bytes are `earlier`, is replaced by other bytes: refuse when it was
    published by another model (unless `republish`), else copy it and its manifest into
    `superseded/`, named by the earlier file's content hash. A file whose manifest does not
    describe it (damaged, or written by hand) is kept the same way and replaced."""
    about = _describing_manifest(out, earlier)
    folder = out.parent / SUPERSEDED_DIR
    if about is not None and about.get("model_version") != model_version and not republish:
        raise ScoreError(
            f"{out}: this week was published by {about.get('model_version')}; this run scores with "
            f"{model_version}. A published week is replaced only on purpose: rerun with CHURN_REPUBLISH=1 "
            f"(for example `CHURN_REPUBLISH=1 dvc repro`), which keeps the earlier file in {folder}/"
        )
    kept = folder / f"{out.stem}.{manifest.sha256(earlier)[:12]}.csv"
    with atomic_path(kept) as tmp:
        tmp.write_bytes(earlier)
    if manifest.path_of(out).exists():
        with atomic_path(manifest.path_of(kept)) as tmp:
            tmp.write_bytes(manifest.path_of(out).read_bytes())
    log.warning("%s: replaced; the earlier file is kept as %s", out, kept)
    return kept


def publish(
    table: pd.DataFrame, out_dir: Path, manifest_extra: dict, *, guard: bool = True, republish: bool = False
) -> Path:
    """Write `churn_scores_<ISO week>.csv` and then its manifest, each by one atomic rename: a
    reader sees the previous complete file or the new complete file, never a partial one, and
    other weeks' files are never touched. A manifest always describes the CSV beside it. With
    `guard`, a week's file is never replaced silently (`keep_earlier`)."""
    week = iso_week_label(dt.date.fromisoformat(table["score_date"].iloc[0]))
    out = Path(out_dir) / f"churn_scores_{week}.csv"
    data = to_csv_bytes(table)
    earlier = out.read_bytes() if guard and out.exists() else data
    if earlier != data:
        keep_earlier(out, earlier, model_version=manifest_extra.get("model_version"), republish=republish)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    about = {
        "schema_version": SCHEMA_VERSION,
        "as_of": table["score_date"].iloc[0],
        "valid_until": table["valid_until"].iloc[0],
        "horizon_days": int(table["horizon_days"].iloc[0]),
        **manifest_extra,
    }
    manifest.write(out, rows=table, data=data, about=about)
    return out


SNAPSHOTS_DIR = "snapshots"  # in the scores folder: each published week's scoring snapshot


def snapshot_archive(scores_dir: Path, score_date: dt.date) -> Path:
    """Where the scoring snapshot of the week of `score_date` is kept beside its file."""
    return Path(scores_dir) / SNAPSHOTS_DIR / f"churn_snapshot_{iso_week_label(score_date)}.parquet"


def read_suppression(path: Path, params: Params) -> set[str]:
    """Do-not-contact ids: a CSV with a `customer_id` column, in the export's ids (turned into
    pseudonyms with the same key when ingest pseudonymizes)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    if "customer_id" not in frame.columns:
        raise ScoreError(
            f"{path}: the suppression list needs a customer_id column; it has {list(frame.columns)}"
        )
    ids = [i.strip() for i in frame["customer_id"] if i.strip()]
    if params.ingest.pseudonymize:
        ids = pseudonyms(pseudonym_key(params.ingest.pseudonym_key_env), ids)
    return set(ids)


def check_verdict(path: Path | None, snapshot: pd.DataFrame) -> None:
    """Refuse to score a snapshot the drift check stopped, or one it did not see."""
    if path is None:
        return
    found = read_record(path, Verdict)
    score_date = pd.Timestamp(snapshot["cutoff"].iloc[0]).date()
    if found.score_date != score_date:
        raise ScoreError(
            f"{path}: the drift check was for the snapshot of {found.score_date}, not {score_date}; "
            "run monitor on this snapshot first"
        )
    if not found.may_score:
        raise ScoreError(f"{path}: the drift check stopped scoring of {score_date} (status {found.status})")


def main(
    params_path: Path,
    snapshot_path: Path,
    model_dir: Path,
    fits: Path,
    suppression: Path,
    scores_dir: Path,
    preview_dir: Path,
    verdict: Path | None = None,
    republish: bool = False,
    headline_out: Path | None = None,
    uplift_dir: Path | None = None,
) -> Path:
    """Score the snapshot; a production run publishes into `scores_dir`, an experiment
    (`core/runs.py`) writes the file it would publish under `preview_dir` and touches nothing
    else. Either way `preview_dir/summary.json` says what was written where."""
    from pipeline.core.params import load_params

    params = load_params(params_path)
    kind = run_kind(os.environ)
    snapshot = pd.read_parquet(snapshot_path)
    if snapshot.empty:
        raise ScoreError(f"{snapshot_path}: no eligible customers to score")
    check_verdict(verdict, snapshot)
    model_dir = Path(model_dir)
    champion = read_json(model_dir / CHAMPION_FILE)
    trained_for = read_json(model_dir / SUMMARY_FILE).get("horizon_days")
    if trained_for is not None and trained_for != label_horizon(snapshot):
        raise ScoreError(
            f"the champion predicts churn over {trained_for} days but the scoring snapshot is built for "
            f"{label_horizon(snapshot)} days: retrain (dvc repro) before scoring"
        )
    model = ChurnModel.load(model_dir)
    p = model.probability(snapshot)
    score_date = pd.Timestamp(snapshot["cutoff"].iloc[0]).date()
    fitted = read_record(fits, Fits).btyd_at(score_date, "pareto_nbd")
    version = f"{champion['registered_model']}/{champion['model_version']}"
    do_not_contact = read_suppression(suppression, params)
    decision, ranking = read_ranking(uplift_dir) if uplift_dir is not None else ({}, None)

    def explain(rows: pd.DataFrame) -> pd.DataFrame:
        return contributions(model, rows, params.explain.chunk_rows)

    table = score_table(
        snapshot=snapshot,
        p=p,
        explain=explain,
        pnbd=ParetoNBD(**fitted),
        model_version=version,
        params=params.score,
        do_not_contact=do_not_contact,
        uplift=ranking,
    )
    table = validate(table, SCORES, "weekly score file")
    extra = {
        "model_version": version,
        "model_sha256": champion["model_sha256"],
        "inputs_sha256": {"scoring_snapshot": manifest.sha256(Path(snapshot_path))},
        "table_schema": SCORE_FILE_SCHEMA["name"],
        # how the list was ranked: by value at risk until randomized outcomes show that ranking by
        # predicted uplift retains more (churn uplift, docs/uplift.md)
        "ranking": LIST_POLICY if ranking is None else UPLIFT_POLICY,
        "ranking_why": decision.get("why", "no uplift decision given"),
    }
    with permissions_of(snapshot_path):
        if kind.publishes:
            out = publish(table, scores_dir, extra, republish=republish)
            # the features each row was scored on, kept with the week's file: what an uplift
            # model learns from once the week's outcomes are known (churn outcomes)
            write_parquet(snapshot, snapshot_archive(scores_dir, score_date))
        else:
            out = publish(table, Path(preview_dir) / PREVIEW_DIR, extra, guard=False)
        write_json(
            {
                "run": kind.label,
                "published": kind.publishes,
                "file": str(out),
                "model_version": version,
                "rows": len(table),
                "outreach_rows": int(table["outreach"].sum()),
                "holdout_rows": int(table["holdout"].sum()),
                "exploration_rows": int(table["exploration"].sum()),
                "risk_tiers": {k: int(v) for k, v in table["risk_tier"].value_counts().sort_index().items()},
            },
            Path(preview_dir) / SUMMARY_NAME,
        )
        write_headline({"rows": len(table), "outreach": int(table["outreach"].sum())}, headline_out)
    log.info(
        "%s%s: %d customers, tiers %s, %d on the outreach list (%d held out)",
        "" if kind.publishes else f"experiment {kind.label}, not published: ",
        out,
        len(table),
        table["risk_tier"].value_counts().to_dict(),
        table["outreach"].sum(),
        table["holdout"].sum(),
    )
    return out
