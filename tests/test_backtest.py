import warnings
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.commands.quality import load_mapping
from pipeline.core.model import EVALUATION_DIR
from pipeline.core.params import ParamsError, load_params
from pipeline.stages.backtest import summary
from pipeline.stages.simulate import simulate
from tests.conftest import ROOT


def test_summary_means_and_wins():
    table = pd.DataFrame(
        {
            "cutoff": ["2026-01-01", "2026-01-01", "2026-01-15", "2026-01-15"],
            "scorer": ["model", "recency", "model", "recency"],
            "rows": [100, 100, 120, 120],
            "churn_rate": [0.5, 0.5, 0.6, 0.6],
            "roc_auc": [0.8, 0.7, 0.7, 0.75],
            "pr_auc": [0.9, 0.8, 0.85, 0.8],
            "brier": [0.2, None, 0.3, None],
        }
    )
    result = summary(table)
    assert result["model"] == {
        "roc_auc": 0.75, "pr_auc": 0.875, "brier": 0.25, "origins_won_roc_auc": 1.0, "origins": 2.0,
    }  # fmt: skip
    assert result["recency"] == {"roc_auc": 0.725, "pr_auc": 0.8}


@pytest.mark.slow
def test_benchmark_quality_on_an_export_with_its_own_mapping(tmp_path):
    params = load_params(ROOT / "params.yaml")
    sim = params.simulate.model_copy(update={"n_customers": 2000})
    raw, _ = simulate(sim)
    # the same export with renamed columns and an amount column, as another shop would send it
    frame = raw.to_pandas().rename(columns={"Customer ID": "client", "InvoiceDate": "when", "Invoice": "doc"})
    frame["revenue"] = pd.to_numeric(frame["Quantity"], errors="coerce") * pd.to_numeric(
        frame["Price"], errors="coerce"
    )
    frame = frame[["client", "when", "doc", "revenue"]]
    export = tmp_path / "export.csv"
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), export)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        yaml.safe_dump(
            {
                "ingest": {
                    "columns": {
                        "customer_id": "client",
                        "order_ts": "when",
                        "order_id": "doc",
                        "amount": "revenue",
                    },
                    "date_formats": ["%d/%m/%Y %H:%M"],
                }
            }
        )
    )
    settings = yaml.safe_load((ROOT / "params.yaml").read_text())
    settings["backtest"]["origins"] = 2
    settings["train"]["num_threads"] = 1
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(settings))
    out = tmp_path / "quality.csv"
    result = CliRunner().invoke(
        app,
        ["benchmark", "quality", "--transactions", str(export), "--mapping", str(mapping), "--out", str(out),
         "--params", str(params_file), "--cutoff", "2026-07-01", "--horizon", "90"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert sorted(table["scorer"].unique()) == [
        "bg_nbd",
        "lightgbm_rfm",
        "logistic_rfm",
        "model",
        "pareto_nbd",
        "recency",
    ]
    assert table["cutoff"].nunique() == 2
    assert table["roc_auc"].between(0.5, 1.0).all()
    assert "mean" in result.output and "pareto_nbd" in result.output
    assert "churn = no order within 90 days" in result.output
    # a Wednesday: the question is asked at the grid's Monday before it (2026-08-17 - 8 weeks)
    grid = "the latest cutoff is 2026-06-22, the last date of the cutoff grid before 2026-07-01"
    assert grid in result.output
    assert "at 2026-06-22 (" in result.output and sorted(table["cutoff"].unique())[-1] == "2026-06-22"


def test_benchmark_quality_refuses_a_bad_mapping(tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("columns: {client: x}\n")
    (tmp_path / "x.csv").write_text("client\n1\n")
    result = CliRunner().invoke(
        app, ["benchmark", "quality", "--transactions", str(tmp_path / "x.csv"), "--mapping", str(mapping)]
    )
    assert result.exit_code == 2
    assert "invalid mapping" in result.output


def test_a_mapping_file_overrides_params_sections_key_by_key(tmp_path):
    base = load_params(ROOT / "params.yaml")
    mapping = tmp_path / "mapping.yaml"
    columns = {"customer_id": "household", "order_ts": "day", "amount": "paid"}
    mapping.write_text(yaml.safe_dump({"ingest": {"columns": columns}, "featurize": {"horizon_days": 30}}))
    params = load_mapping(mapping, base)
    assert params.ingest.columns == columns
    assert params.ingest.date_formats == base.ingest.date_formats
    assert params.featurize.horizon_days == 30
    assert params.featurize.model_dump(exclude={"horizon_days"}) == base.featurize.model_dump(
        exclude={"horizon_days"}
    )
    assert params.train == base.train
    # a bare ingest section is the ingest section
    mapping.write_text(yaml.safe_dump({"columns": columns, "date_formats": ["%Y-%m-%d"]}))
    bare = load_mapping(mapping, base)
    assert (bare.ingest.columns, bare.ingest.date_formats, bare.featurize) == (
        columns,
        ["%Y-%m-%d"],
        base.featurize,
    )


def test_a_mapping_file_with_an_unknown_section_or_key_is_refused(tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("ingest: {max_quarantine_share: 0.1}\nfeaturise: {horizon_days: 30}\n")
    with pytest.raises(ParamsError, match=r"unknown section\(s\) \['featurise'\]"):
        load_mapping(mapping, load_params(ROOT / "params.yaml"))
    mapping.write_text("featurize: {horizon: 30}\n")
    extra = r"invalid mapping\n  featurize.horizon: Extra inputs are not permitted"
    with pytest.raises(ParamsError, match=extra):
        load_mapping(mapping, load_params(ROOT / "params.yaml"))


def test_a_fault_at_an_origin_is_raised_not_skipped(monkeypatch):
    """Only a split the cutoffs cannot give skips an origin; a NaN crash in a baseline must surface
    instead of ending as advice to add cutoffs."""
    import pipeline.stages.backtest as stage

    def broken(*_args, **_kwargs):
        raise ValueError("Input contains NaN")

    monkeypatch.setattr(stage, "origin_metrics", broken)
    snapshots = pd.DataFrame({"cutoff": pd.to_datetime(["2026-01-05", "2026-01-19"])})
    with pytest.raises(ValueError, match="Input contains NaN"):
        stage.backtest(snapshots, None, 2)


def _history(cutoffs: int = 8) -> pd.DataFrame:
    """The same 600 customers at cutoffs 14 days apart, each cutoff its own draw."""
    from tests.conftest import train_snapshots

    frames = []
    for k in range(cutoffs):
        one = train_snapshots(seed=k)
        one["spend"] = one["n_orders"] * 20.0
        one["tenure_days"] = one["recency_days"] + 30.0 * one["n_orders"]
        one["cutoff"] = pd.Timestamp("2024-01-01") + pd.Timedelta(days=14 * k)
        frames.append(one)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A snapshot file of 8 cutoffs and the candidate folder the train stage made from it."""
    from pipeline.core.io import write_parquet
    from pipeline.stages import train

    folder = tmp_path_factory.mktemp("trained")
    path = folder / "train.parquet"
    write_parquet(_history(), path)
    with warnings.catch_warnings():  # MLflow warns about integer columns while logging the run
        warnings.simplefilter("ignore", UserWarning)
        train.main(
            params_path=ROOT / "params.yaml",
            snapshots_path=path,
            out_dir=folder / "cand",
            run_out=folder / "run.json",
        )
    return path, folder / "cand" / EVALUATION_DIR


def test_the_origin_train_judged_is_read_not_refitted_and_every_metric_is_the_same(trained, monkeypatch):
    from pipeline.core.partitions import read_snapshots
    from pipeline.stages import backtest as stage

    path, folder = trained
    params = load_params(ROOT / "params.yaml")
    fits = []
    real_fit = stage.fit_churn_model
    monkeypatch.setattr(
        stage,
        "fit_churn_model",
        lambda rows, p, total=None: fits.append(rows["cutoff"].max()) or real_fit(rows, p, total),
    )
    snapshots = read_snapshots(path)

    judged = stage.read_judged(folder, path, params.train)
    assert judged is not None and judged.split.test == [pd.Timestamp("2024-04-08")]
    reused = stage.backtest(snapshots, params=params, origins=3, judged=judged)
    assert len(fits) == 2  # the two earlier origins; the latest is train's judged model
    fitted = stage.backtest(snapshots, params=params, origins=3)
    assert len(fits) == 5
    pd.testing.assert_frame_equal(reused, fitted)
    assert reused["cutoff"].nunique() == 3


def test_a_judged_model_of_another_recipe_or_other_snapshots_is_not_read(trained, tmp_path):
    from pipeline.core.io import write_parquet
    from pipeline.stages import backtest as stage

    path, folder = trained
    params = load_params(ROOT / "params.yaml")
    assert stage.read_judged(folder, path, params.train) is not None
    assert stage.read_judged(folder, path, params.train.model_copy(update={"learning_rate": 0.1})) is None
    other = tmp_path / "other.parquet"
    write_parquet(_history(cutoffs=9), other)
    assert stage.read_judged(folder, other, params.train) is None
    assert stage.read_judged(None, path, params.train) is None


def test_the_rows_read_for_the_fits_give_every_metric_of_the_whole_table(tmp_path):
    """The stage reads each origin's rows and, of the training cutoffs, only the customers the cap
    keeps; with the cap biting, every metric is the whole table's, to the last bit."""
    from pipeline.core.io import write_parquet
    from pipeline.core.partitions import read_snapshots
    from pipeline.stages import backtest as stage

    path = tmp_path / "train.parquet"
    write_parquet(_history(), path)
    params = load_params(ROOT / "params.yaml")
    params = params.model_copy(update={"train": params.train.model_copy(update={"max_rows": 1200})})
    rows, keys = stage.backtest_rows(path, params)
    whole = read_snapshots(path)
    pd.testing.assert_frame_equal(keys, whole[["customer_id", "cutoff", "horizon_days"]])
    origins = sorted(whole["cutoff"].unique())[-3:]
    assert whole["cutoff"].isin(origins).sum() == rows["cutoff"].isin(origins).sum()  # whole
    earlier = len(whole) - whole["cutoff"].isin(origins).sum()
    assert len(rows) - rows["cutoff"].isin(origins).sum() < 0.6 * earlier  # the cap bites on the others
    read = stage.backtest(rows, params=params, origins=3, keys=keys)
    pd.testing.assert_frame_equal(read, stage.backtest(whole, params=params, origins=3))
    assert read["cutoff"].nunique() == 3


def test_at_the_judged_origin_evaluates_baseline_scores_are_read_and_every_metric_is_the_same(
    trained, tmp_path, monkeypatch
):
    from pipeline.core.partitions import read_snapshots
    from pipeline.stages import backtest as stage
    from pipeline.stages import evaluate

    path, judged_dir = trained
    scores = tmp_path / "baselines.parquet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        evaluate.main(
            params_path=ROOT / "params.yaml",
            snapshots_path=path,
            model_dir=judged_dir.parent,
            run_path=judged_dir.parent.parent / "run.json",
            truth_path=None,
            metrics_out=tmp_path / "evaluate.json",
            plots_dir=tmp_path / "plots",
            judged_out=tmp_path / "judged.json",
            baselines_out=scores,
        )
    params = load_params(ROOT / "params.yaml")
    fits = []
    real = stage.baseline_scores
    monkeypatch.setattr(stage, "baseline_scores", lambda *args: fits.append(1) or real(*args))
    snapshots = read_snapshots(path)
    judged = stage.read_judged(judged_dir, path, params.train, baselines=scores)
    read = stage.backtest(snapshots, params=params, origins=3, judged=judged)
    assert len(fits) == 2  # the two earlier origins; the latest reads evaluate's scores
    fitted = stage.backtest(
        snapshots, params=params, origins=3, judged=stage.read_judged(judged_dir, path, params.train)
    )
    assert len(fits) == 5
    pd.testing.assert_frame_equal(read, fitted)
