"""Cutoff schedule: the dates at which labels and point-in-time features are taken."""

from __future__ import annotations

import datetime as dt


def training_cutoffs(
    score_date: dt.date, horizon_days: int, every_days: int, n_cutoffs: int
) -> list[dt.date]:
    """Cutoffs in ascending order, every `every_days`, the latest one being the last whose
    label window [cutoff, cutoff + horizon) closes on or before the scoring date."""
    latest = score_date - dt.timedelta(days=horizon_days)
    return [latest - dt.timedelta(days=every_days * k) for k in range(n_cutoffs)][::-1]


def iso_week_label(day: dt.date) -> str:
    """ISO week of a date as YYYY-Www, the key of a weekly score file."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
