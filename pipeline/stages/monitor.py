"""Stage monitor: has the population drifted away from what the champion learned from?

The population stability index (PSI) of every feature, of the champion's churn probabilities and of
the share of mean |SHAP| each feature carries, between the latest labelled training cutoff (the
reference) and the scoring snapshot. PSI = sum((a - e) ln(a / e)) over bins: below 0.1 is stable,
0.1 to 0.25 a shift worth a look, above 0.25 a population the model was not trained on. Past
`monitor.psi_stop` scoring stops with the drifted columns named (or only warns, by param).
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from pipeline.core import tracking
from pipeline.core.contributions import BASE, contributions, evenly_spaced
from pipeline.core.errors import PipelineError
from pipeline.core.io import write_csv, write_headline, write_json
from pipeline.core.model import ChurnModel, model_frame
from pipeline.core.params import MonitorParams
from pipeline.core.partitions import read_snapshots
from pipeline.core.records import Verdict

log = logging.getLogger(__name__)
EPS = 1e-4  # an empty bin counts as this share, so a bin seen on one side only adds a finite penalty
MISSING = "<missing>"


class DriftError(PipelineError):
    """The scoring population drifted past the stop threshold."""


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two distributions over the same bins (counts or shares)."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.maximum(e / max(e.sum(), 1.0), EPS)
    a = np.maximum(a / max(a.sum(), 1.0), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def binned(reference: pd.Series, current: pd.Series, bins: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Counts per bin: numbers by the reference's quantiles (missing values a bin of their own),
    text by category (unseen categories share one bin). None for a column constant in the
    reference (a cutoff-level value such as the season: nothing to compare)."""
    if reference.nunique(dropna=False) <= 1:
        return None
    if pd.api.types.is_numeric_dtype(reference):
        ref = reference.to_numpy(dtype=float)
        cur = current.to_numpy(dtype=float)
        edges: np.ndarray | list[float] = (
            np.unique(np.nanquantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
            if np.isfinite(ref).any()
            else []
        )

        def counts(x: np.ndarray) -> np.ndarray:
            idx = np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, x, side="right"))
            return np.bincount(idx, minlength=len(edges) + 2)

        return counts(ref), counts(cur)
    ref = reference.astype(object).where(reference.notna(), MISSING).astype(str)
    cur = current.astype(object).where(current.notna(), MISSING).astype(str)
    levels = sorted(ref.unique())
    cur = cur.where(cur.isin(levels), "<unseen>")
    levels.append("<unseen>")
    return (
        ref.value_counts().reindex(levels, fill_value=0).to_numpy(),
        cur.value_counts().reindex(levels, fill_value=0).to_numpy(),
    )


def feature_psi(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], bins: int
) -> dict[str, float]:
    out = {}
    for feature in features:
        counts = binned(reference[feature], current[feature], bins)
        if counts is not None:
            out[feature] = round(psi(*counts), 6)
    return out


def shap_shares(contrib: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Each feature's share of the mean |SHAP|: what the model leans on for this population."""
    mean_abs = contrib[features].abs().mean().to_numpy()
    return mean_abs / max(mean_abs.sum(), 1e-12)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    model: ChurnModel,
    current_contrib: pd.DataFrame,
    params: MonitorParams,
) -> dict:
    features = model.booster.feature_name()
    by_feature = feature_psi(reference=reference, current=current, features=features, bins=params.bins)
    p_ref, p_cur = model.probability(reference), model.probability(current)
    score_counts = binned(pd.Series(p_ref), pd.Series(p_cur), params.bins)
    sample = evenly_spaced(reference, params.shap_rows)
    ref_shares = shap_shares(contributions(model, sample), features)
    cur_shares = shap_shares(current_contrib, features)
    summary = {
        "reference_cutoff": pd.Timestamp(reference["cutoff"].iloc[0]).date().isoformat(),
        "reference_rows": len(reference),
        "scoring_rows": len(current),
        "score_psi": round(psi(*score_counts), 6) if score_counts else 0.0,
        "shap_share_psi": round(psi(ref_shares, cur_shares), 6),
        "feature_psi": dict(sorted(by_feature.items(), key=lambda kv: -kv[1])),
        "shap_share": {
            f: {"reference": round(float(r), 6), "scoring": round(float(c), 6)}
            for f, r, c in zip(features, ref_shares, cur_shares, strict=True)
        },
    }
    summary["max_feature_psi"] = max(by_feature.values(), default=0.0)
    drifted = {f: v for f, v in by_feature.items() if v >= params.psi_stop}
    for name in ("score_psi", "shap_share_psi"):
        if summary[name] >= params.psi_stop:
            drifted[name.removesuffix("_psi")] = summary[name]
    warned = {f: v for f, v in by_feature.items() if params.psi_warn <= v < params.psi_stop}
    summary["drifted"] = dict(sorted(drifted.items(), key=lambda kv: -kv[1]))
    summary["warned"] = dict(sorted(warned.items(), key=lambda kv: -kv[1]))
    summary["status"] = "stop" if drifted else ("warn" if warned else "ok")
    return summary


def verdict(report: dict, current: pd.DataFrame, blocked: bool) -> dict:
    """What `score` needs from the drift check: whether the scoring snapshot of this date may be
    scored. Written before a stop is raised, so a stale pass never survives a failed check."""
    record = Verdict(
        score_date=pd.Timestamp(current["cutoff"].iloc[0]).date(),
        status=report["status"],
        may_score=not blocked,
    )
    return record.model_dump(mode="json")


def main(
    params_path: Path,
    snapshots_path: Path,
    snapshot_path: Path,
    model_dir: Path,
    shap_path: Path,
    metrics_out: Path,
    table_out: Path,
    verdict_out: Path,
    headline_out: Path | None = None,
) -> dict:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    reference = read_snapshots(snapshots_path, latest=1)  # the latest cutoff's file, not the table
    current = pd.read_parquet(snapshot_path)
    model = ChurnModel.load(model_dir)
    contrib = pd.read_parquet(shap_path)
    model_frame(current, model.booster.feature_name())  # a missing feature column fails here, by name
    report = drift_report(
        reference=reference,
        current=current,
        model=model,
        current_contrib=contrib.drop(columns=[BASE], errors="ignore"),
        params=params.monitor,
    )
    write_json(report, metrics_out)
    write_headline({"psi": report["score_psi"]}, headline_out)
    table = pd.DataFrame(
        {"feature": list(report["feature_psi"]), "psi": list(report["feature_psi"].values())}
    )
    write_csv(table, table_out)
    tracking.configure(params.mlflow.experiment)
    with mlflow.start_run(run_name=f"monitor-{current['cutoff'].iloc[0].date()}"):
        mlflow.set_tags({"kind": "monitor", "status": report["status"]})
        drift = {k: report[k] for k in ("score_psi", "shap_share_psi", "max_feature_psi")}
        mlflow.log_metrics(
            tracking.flat_metrics(drift, "drift") | tracking.flat_metrics(report["feature_psi"], "psi")
        )
        mlflow.log_artifact(str(metrics_out), "monitor")
    blocked = report["status"] == "stop" and params.monitor.action == "stop"
    write_json(verdict(report, current, blocked), verdict_out)
    if report["status"] == "stop":
        worst = ", ".join(f"{k} {v:.2f}" for k, v in list(report["drifted"].items())[:8])
        message = (
            f"the scoring population drifted from the training cutoff {report['reference_cutoff']}: "
            f"PSI {worst} (monitor.psi_stop = {params.monitor.psi_stop}). Check the export for a changed "
            f"column, unit or coverage (see {metrics_out}); retrain on recent data, or set "
            "monitor.action: warn to score anyway"
        )
        if params.monitor.action == "stop":
            raise DriftError(message)
        log.warning(message)
    log.info(
        "drift %s: score PSI %.3f, max feature PSI %.3f",
        report["status"],
        report["score_psi"],
        report["max_feature_psi"],
    )
    return report
