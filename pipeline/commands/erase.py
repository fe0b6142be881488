"""`churn erase`: remove customers from every data file of the project and report what was removed
(the erasure itself is `core.privacy.erase`; see docs/privacy.md)."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.params import load_params
from pipeline.core.privacy import erase, pseudonym_key


def main(params_path: Path, root: Path, customer_ids: list[str]) -> str:
    settings = load_params(params_path).ingest
    key = pseudonym_key(settings.pseudonym_key_env) if settings.pseudonymize else None
    removed = erase(
        root=root, customer_ids=customer_ids, raw_id_column=settings.columns["customer_id"], key=key
    )
    lines = [f"{path}: {rows} row(s) removed" for path, rows in removed.items()]
    lines.append(f"{sum(removed.values())} row(s) removed from {len(removed)} file(s)")
    return "\n".join(lines)
