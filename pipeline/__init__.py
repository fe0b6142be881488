"""Churn-prediction pipeline: raw transactions to a weekly, explained churn-risk file."""

__version__ = "0.1.0"
