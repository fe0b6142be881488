import json

import pytest

from pipeline.core.tables import SCORE_FILE_SCHEMA, SCORES, ContractError, validate
from tests.conftest import ROOT
from tests.conftest import score_table_example as _table


def test_contract_names_the_column_and_row():
    table = _table()
    table.loc[7, "churn_probability"] = 1.5
    with pytest.raises(
        ContractError,
        match=r"column 'churn_probability' check 'less_than_or_equal_to\(1\)': value 1.5 at row 7",
    ):
        validate(table, SCORES, "weekly score file")


def test_the_published_schema_in_docs_is_the_contract():
    published = json.loads((ROOT / "docs" / "score_file.schema.json").read_text(encoding="utf-8"))
    assert published == SCORE_FILE_SCHEMA
