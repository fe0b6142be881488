"""The snapshot tables' key and label columns: one row per customer and cutoff. Kept apart from the
contracts in `tables` (which load pandera) so that the stages that only name these columns start
without it."""

from __future__ import annotations

KEYS = ["customer_id", "cutoff"]
# 1 when the customer churned: no order in [cutoff, cutoff + horizon)
LABEL = "churned"
HORIZON = "horizon_days"  # the label window's length, carried with every snapshot row; not a feature
