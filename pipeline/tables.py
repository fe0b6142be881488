"""Contracts at the edges: canonical transactions coming in, the weekly score file going out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from pipeline.params import CANONICAL_OPTIONAL

# snapshot tables: one row per customer and cutoff; the label is 1 when the customer churned
KEYS = ["customer_id", "cutoff"]
LABEL = "churned"
HORIZON = "horizon_days"  # the label window's length, carried with every snapshot row; not a feature

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

RISK_TIERS = ("high", "medium", "low")

SCORES = pa.DataFrameSchema(
    {
        "customer_id": pa.Column(str, _NON_EMPTY, unique=True),
        "score_date": pa.Column(str, pa.Check.str_matches(r"^\d{4}-\d{2}-\d{2}$")),
        "churn_probability": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
        "risk_tier": pa.Column(str, pa.Check.isin(RISK_TIERS)),
        "risk_decile": pa.Column("int64", pa.Check.in_range(1, 10)),
        "reason_1": pa.Column(str),
        "reason_2": pa.Column(str),
        "reason_3": pa.Column(str),
        "model_version": pa.Column(str, _NON_EMPTY),
    },
    strict=True,
    ordered=True,
    name="scores",
)


class ContractError(ValueError):
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
