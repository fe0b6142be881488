"""The example rows in docs/score_file.md: the sample's weekly file scored again with
`score.reasons_for: all` (into a temporary folder), and per recommended campaign the customer with
the highest value at risk, as a Markdown table (columns shortened). Run after `dvc repro`.

    python benchmarks/examples.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.stages import score  # noqa: E402

COLUMNS = [
    "customer_id", "churn_probability", "risk_tier", "segment", "predicted_value", "value_at_risk",
    "reason_1", "reason_1_points", "reason_2", "reason_2_points", "reason_3", "reason_3_points",
    "recommended_campaign", "outreach", "outreach_rank", "holdout",
]  # fmt: skip


def main() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["score"]["reasons_for"] = "all"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        out = score.main(
            params_path=Path(tmp) / "params.yaml",
            snapshot_path=ROOT / "data/features/score.parquet",
            model_dir=ROOT / "models/champion",
            fits=ROOT / "data/features/fits.json",
            suppression=ROOT / "data/suppression.csv",
            scores_dir=Path(tmp) / "scores",
            preview_dir=Path(tmp) / "preview",
        )
        table = pd.read_csv(out, dtype={"customer_id": str}, keep_default_na=False)
    best = table.sort_values("value_at_risk", ascending=False, kind="stable")
    rows = best.groupby("recommended_campaign", sort=False).head(1)
    rows = rows.sort_values(["outreach", "value_at_risk"], ascending=[False, False], kind="stable")
    print(rows[COLUMNS].to_markdown(index=False))


if __name__ == "__main__":
    main()
