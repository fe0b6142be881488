"""Contracts at the edges: canonical transactions coming in, the weekly score file going out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from pipeline.core.errors import PipelineError
from pipeline.core.params import CANONICAL_OPTIONAL, LIFECYCLE_STAGES, RISK_TIERS, VALUE_TIERS

_NON_EMPTY = pa.Check.str_length(min_value=1)
_FINITE = pa.Check(lambda s: np.isfinite(s), element_wise=False, error="finite")

OPTIONAL_TYPES: dict[str, type] = {
    "order_id": str,
    "product_id": str,
    "category": str,
    "quantity": float,
    "unit_price": float,
    "country": str,
    "channel": str,
}
assert set(OPTIONAL_TYPES) == set(CANONICAL_OPTIONAL)

TRANSACTIONS = pa.DataFrameSchema(
    {
        "source_row": pa.Column("int64", pa.Check.ge(1), unique=True),
        "customer_id": pa.Column(str, _NON_EMPTY),
        "order_ts": pa.Column("datetime64[us]"),
        # negative amounts are returns and cancellations; zero-value lines are quarantined
        "amount": pa.Column(float, [_FINITE, pa.Check.ne(0.0)]),
        **{name: pa.Column(kind, nullable=True, required=False) for name, kind in OPTIONAL_TYPES.items()},
    },
    strict=True,
    name="transactions",
)

# 1.1 added contact, exploration, contact_probability and contact_policy; 1.2 added
# predicted_uplift and the contact policy "uplift" (docs/score_file.md)
SCHEMA_VERSION = "1.2"


def _field(name: str, kind: str, description: str, **constraints: object) -> dict:
    return {"name": name, "type": kind, "description": description, "constraints": constraints}


# The weekly score file, as a Frictionless Table Schema: published in docs/ for CRM imports and
# turned into the pandera contract the score stage enforces, so the two cannot drift apart.
SCORE_FILE_SCHEMA: dict = {
    "$schema": "https://specs.frictionlessdata.io/schemas/table-schema.json",
    "name": "churn_scores",
    "title": "Weekly churn risk scores for CRM import",
    "version": SCHEMA_VERSION,
    "description": (
        "UTF-8 CSV with a header, one row per customer eligible at the scoring date, sorted by "
        "customer_id. Booleans are true/false, dates ISO 8601, empty cells are missing values. Text "
        "that a spreadsheet would read as a formula (starting with = + - @, tab or carriage return) "
        "is prefixed with a single quote."
    ),
    "missingValues": [""],
    "primaryKey": ["customer_id"],
    "fields": [
        _field("customer_id", "string", "The customer's id in the shop's data.", required=True, unique=True),
        _field("score_date", "date", "As-of date: only orders before it were seen.", required=True),
        _field("valid_until", "date", "Last day this file should be acted on (the next one replaces it).", required=True),
        _field("horizon_days", "integer", "Churn = no order within this many days from score_date.", required=True, minimum=1),
        _field("churn_probability", "number", "Calibrated probability of no order within the horizon.", required=True, minimum=0, maximum=1),
        _field("risk_tier", "string", "By churn_probability and the risk tier thresholds.", required=True, enum=list(RISK_TIERS)),
        _field("risk_decile", "integer", "1 = the riskiest tenth of this file.", required=True, minimum=1, maximum=10),
        _field("value_tier", "string", "By predicted_value: high = top 20%, mid = next 30% (defaults).", required=True, enum=list(VALUE_TIERS)),
        _field("lifecycle_stage", "string", "new, active, at_risk, lapsed or reactivated.", required=True, enum=list(LIFECYCLE_STAGES)),
        _field("segment", "string", "Value tier and lifecycle stage, e.g. High-value at-risk.", required=True),
        _field("predicted_value", "number", "Expected spend over the value horizon.", required=True, minimum=0),
        _field("value_at_risk", "number", "churn_probability x predicted_value: the outreach order until the list ranks by uplift.", required=True, minimum=0),
        *(
            field
            for k in (1, 2, 3)
            for field in (
                _field(f"reason_{k}", "string", f"Reason {k} the customer is at risk (once the list ranks by uplift: a contact helps), in plain words."),
                _field(f"reason_{k}_points", "number", f"Percentage points of churn probability (of predicted uplift, once it ranks) reason {k} adds.", minimum=0, maximum=100),
            )
        ),
        _field("recommended_campaign", "string", "The first campaign rule that fits; none = leave alone.", required=True, pattern="^[a-z][a-z0-9_]*$"),
        _field("outreach", "boolean", "On this week's outreach list (top value_at_risk, or top net uplift gain, within the contact budget).", required=True),
        _field("outreach_rank", "integer", "1 = call first; empty when not on the list.", minimum=1),
        _field("holdout", "boolean", "Randomized control: on the list but NOT to be contacted.", required=True),
        _field("do_not_contact", "boolean", "On the suppression list: scored and counted, never on the outreach list.", required=True),
        _field("exploration", "boolean", "In this week's randomized exploration sample below the list's cut-off: to be contacted.", required=True),
        _field("contact", "boolean", "To be contacted this week: on the list and not held out, or in the exploration sample.", required=True),
        _field("contact_probability", "number", "The chance this row had of being contacted under this week's randomization (exact).", required=True, minimum=0, maximum=1),
        _field("contact_policy", "string", "What chose the row: the list ranked by value_at_risk or by uplift, exploration (the sample's pool) or none.", required=True, enum=["value_at_risk", "uplift", "exploration", "none"]),
        _field("predicted_uplift", "number", "Predicted change in the chance of retention if contacted; empty while the list ranks by value at risk.", minimum=-1, maximum=1),
        _field("model_version", "string", "Registered model name/version that scored the file.", required=True),
        _field("schema_version", "string", "Version of this schema.", required=True, enum=[SCHEMA_VERSION]),
    ],
}  # fmt: skip

_PANDAS_TYPES = {"string": str, "date": str, "number": float, "integer": "Int64", "boolean": bool}


def pandera_schema(table_schema: dict) -> pa.DataFrameSchema:
    """A pandera contract from a Table Schema (the subset used here: string, date, number,
    integer, boolean; required, unique, enum, pattern, minimum, maximum)."""
    columns = {}
    for field in table_schema["fields"]:
        c = field.get("constraints", {})
        checks = []
        if field["type"] == "date":
            checks.append(pa.Check.str_matches(r"^\d{4}-\d{2}-\d{2}$"))
        if "pattern" in c:
            checks.append(pa.Check.str_matches(c["pattern"]))
        if "enum" in c:
            checks.append(pa.Check.isin(c["enum"]))
        if "minimum" in c:
            checks.append(pa.Check.ge(c["minimum"]))
        if "maximum" in c:
            checks.append(pa.Check.le(c["maximum"]))
        if field["type"] == "string" and c.get("required"):
            checks.append(_NON_EMPTY)
        columns[field["name"]] = pa.Column(
            _PANDAS_TYPES[field["type"]],
            checks,
            nullable=not c.get("required", False),
            unique=bool(c.get("unique", False)),
        )
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name=table_schema["name"])


def read_table(path: str | Path, table_schema: dict) -> pd.DataFrame:
    """A CSV read the way its Table Schema says: text stays text (ids keep leading zeros), empty
    cells are missing, true/false are booleans."""
    kinds = {f["name"]: f["type"] for f in table_schema["fields"]}
    text = [n for n, k in kinds.items() if k in ("string", "date", "boolean")]
    frame = pd.read_csv(
        path,
        dtype={n: str for n in text},
        keep_default_na=False,
        na_values={n: [""] for n in kinds if n not in text},
        encoding="utf-8",
    )
    for name, kind in kinds.items():
        if name not in frame:
            continue
        if kind == "boolean":
            frame[name] = frame[name].map({"true": True, "false": False})
        elif kind == "integer":
            frame[name] = frame[name].astype("Int64")
    return frame


SCORES = pandera_schema(SCORE_FILE_SCHEMA)


class ContractError(PipelineError):
    """A table broke its contract; the message names the table, column and first offending rows."""


def validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, where: str) -> pd.DataFrame:
    try:
        return schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases.head(10)
        lines = [
            f"  column {row.column!r} check {row.check!r}: value {row.failure_case!r} at row {row.index}"
            for row in cases.itertuples()
        ]
        raise ContractError(
            f"{where}: {len(exc.failure_cases)} violation(s) of the {schema.name} contract; first ones:\n"
            + "\n".join(lines)
        ) from None
