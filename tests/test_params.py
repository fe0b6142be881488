from pathlib import Path

import pytest
import yaml

from pipeline.core.params import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_project_params_load():
    params = load_params(ROOT / "params.yaml")
    assert params.featurize.horizon_days == 90
    assert params.ingest.columns["customer_id"] == "Customer ID"


def test_misspelt_key_is_an_error(tmp_path):
    path = _write(tmp_path, lambda p: p["train"].update({"learning_rat": 0.1}))
    with pytest.raises(ParamsError, match=r"train\.learning_rat: Extra inputs are not permitted"):
        load_params(path)


def test_unknown_mapping_target_is_an_error(tmp_path):
    path = _write(tmp_path, lambda p: p["ingest"]["columns"].update({"customer": "Customer ID"}))
    with pytest.raises(ParamsError, match=r"unknown canonical column\(s\) \['customer'\]"):
        load_params(path)


def test_mapping_needs_amount_or_quantity_and_price(tmp_path):
    path = _write(tmp_path, lambda p: p["ingest"]["columns"].pop("unit_price"))
    with pytest.raises(ParamsError, match="must map 'amount', or both 'quantity' and 'unit_price'"):
        load_params(path)


def test_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="parameter file not found"):
        load_params(tmp_path / "nope.yaml")
