"""`churn`: one entry point for every stage; dvc.yaml calls these same commands with its paths."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Churn-prediction pipeline stages.", no_args_is_help=True, add_completion=False)

ParamsOpt = Annotated[Path, typer.Option("--params", help="Parameter file.")]
PARAMS = Path("params.yaml")
# churn uplift's folder (data/uplift): its uplift.json says how the list is ranked, and why
UpliftOpt = Annotated[
    Path | None,
    typer.Option(help="churn uplift's folder: its decision ranks the list (score) and is reported (report)."),
]


def _opt(help_text: str) -> object:
    return typer.Option(..., help=help_text)


# options several stages share
SnapshotsOpt = Annotated[
    Path, _opt("Labelled training snapshots: the folder featurize writes, or one Parquet file.")
]
ScoringSnapshotOpt = Annotated[Path, _opt("Scoring snapshot (Parquet).")]
RunOpt = Annotated[Path, _opt("The training's MLflow run id and model version (JSON).")]
ChampionOpt = Annotated[Path, typer.Option("--model-dir", help="Champion model folder.")]


def _echo(fn: Callable[..., str]) -> Callable[..., None]:
    """A command that returns its report as text, printed when it succeeds."""

    def run(**kwargs: object) -> None:
        typer.echo(fn(**kwargs))

    return run


def _run(fn: Callable[..., object], inputs: tuple[str, ...] = (), **kwargs: object) -> None:
    """Run a stage main; expected failures (bad input, bad params) print one clear message. The
    arguments named in `inputs` ("name" or "name:format") are checked first (`io.check_input`): a
    missing, unreadable or wrongly formatted input is one line naming it, never a traceback from
    deep inside."""
    from pipeline.core.errors import PipelineError, os_error_message
    from pipeline.core.io import check_input

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        for entry in inputs:
            name, _, kind = entry.partition(":")
            value = kwargs[name]
            if value is not None and "://" not in str(value):
                check_input(Path(str(value)), kind)
        fn(**kwargs)
    except PipelineError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:
        message = os_error_message(exc)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        sys.exit(2)


@app.command()
def simulate(
    raw: Annotated[Path, _opt("Raw transactions CSV to write.")],
    customers: Annotated[Path, _opt("Per-customer latent rates and dropout times (Parquet).")],
    orders: Annotated[Path, _opt("The clean order stream with each order's return (Parquet).")],
    params: ParamsOpt = PARAMS,
) -> None:
    """Simulate a retail transaction export and the latent state behind it (the bundled sample)."""
    from pipeline.stages import simulate as stage

    _run(
        stage.main,
        inputs=("params_path",),
        params_path=params,
        raw_path=raw,
        customers_path=customers,
        orders_path=orders,
    )


@app.command()
def truth(
    customers: Annotated[Path, _opt("simulate's per-customer latent state (Parquet).")],
    orders: Annotated[Path, _opt("simulate's clean order stream (Parquet).")],
    fits: Annotated[Path, _opt("featurize's fits (JSON): the schedule and the scoring date.")],
    out: Annotated[Path, _opt("Per-customer, per-cutoff oracle and true churn probabilities (Parquet).")],
    params: ParamsOpt = PARAMS,
) -> None:
    """The simulated shop's Bayes oracle at the cutoffs featurize used."""
    from pipeline.stages import truth as stage

    _run(
        stage.main,
        inputs=("params_path", "customers_path:parquet", "orders_path:parquet", "fits_path:json"),
        params_path=params,
        customers_path=customers,
        orders_path=orders,
        fits_path=fits,
        truth_path=out,
    )


@app.command()
def ingest(
    raw: Annotated[Path, _opt("Raw export: CSV or Parquet.")],
    out: Annotated[Path, _opt("Validated transactions (Parquet).")],
    quarantine: Annotated[Path, _opt("Rejected rows with their reasons (Parquet).")],
    metrics: Annotated[Path, _opt("Row counts (JSON).")],
    headline: Annotated[
        Path | None, typer.Option(help="Headline metrics for dvc metrics show (JSON): a few numbers.")
    ] = None,
    params: ParamsOpt = PARAMS,
) -> None:
    """Map a raw export onto the transactions contract; quarantine what breaks it."""
    from pipeline.stages import ingest as stage

    _run(
        stage.main,
        inputs=("params_path", "raw_path"),
        params_path=params,
        raw_path=raw,
        kept_out=out,
        quarantine_out=quarantine,
        metrics_out=metrics,
        headline_out=headline,
    )


@app.command()
def featurize(
    transactions: Annotated[
        str,
        _opt(
            "Validated transactions (Parquet): a local path, or with the pyspark backend a URL Spark reads."
        ),
    ],
    train: Annotated[
        Path,
        _opt("Folder for the labelled training snapshots: one Parquet file per cutoff, kept and reused."),
    ],
    score: Annotated[Path, _opt("Scoring snapshot (Parquet).")],
    fits: Annotated[Path, _opt("For later stages: scoring date, schedule used, BTYD fits (JSON).")],
    metrics: Annotated[Path, _opt("Snapshot counts, churn rates, BTYD fits, horizon report (JSON).")],
    horizons: Annotated[Path, _opt("Churn rate and false-churn share per candidate horizon (CSV).")],
    headline: Annotated[
        Path | None, typer.Option(help="Headline metrics for dvc metrics show (JSON): a few numbers.")
    ] = None,
    params: ParamsOpt = PARAMS,
) -> None:
    """Point-in-time features and churn labels at each cutoff, and the scoring snapshot."""
    from pipeline.stages import featurize as stage

    _run(
        stage.main,
        inputs=("params_path", "transactions:parquet"),
        params_path=params,
        transactions=transactions,
        train_out=train,
        score_out=score,
        fits_out=fits,
        metrics_out=metrics,
        horizon_out=horizons,
        headline_out=headline,
    )


@app.command()
def train(
    snapshots: SnapshotsOpt,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Model folder to write.")],
    run: RunOpt,
    params: ParamsOpt = PARAMS,
) -> None:
    """Train the LightGBM churn model with a purged temporal split, calibrate it on the held-out
    validation cutoffs, log and register it in MLflow."""
    from pipeline.stages import train as stage

    _run(
        stage.main,
        inputs=("params_path", "snapshots_path:parquet"),
        params_path=params,
        snapshots_path=snapshots,
        out_dir=out_dir,
        run_out=run,
    )


@app.command()
def evaluate(
    snapshots: SnapshotsOpt,
    model_dir: Annotated[Path, typer.Option("--model-dir", help="Model folder to evaluate.")],
    run: RunOpt,
    metrics: Annotated[Path, _opt("Held-out metrics (JSON).")],
    plots: Annotated[Path, _opt("Folder for curves (CSV) and figures (PNG).")],
    judged: Annotated[Path, _opt("The model's and the baselines' held-out metrics, for promote (JSON).")],
    truth: Annotated[Path | None, typer.Option(help="Simulator truth, for the oracle AUC.")] = None,
    headline: Annotated[
        Path | None, typer.Option(help="Headline metrics for dvc metrics show (JSON): a few numbers.")
    ] = None,
    baselines: Annotated[
        Path | None,
        typer.Option(
            help="The baselines' scores of the held-out rows (Parquet), for backtest's latest origin."
        ),
    ] = None,
    params: ParamsOpt = PARAMS,
) -> None:
    """Held-out metrics of the model and of every baseline, per segment, with curves and figures."""
    from pipeline.stages import evaluate as stage

    _run(
        stage.main,
        inputs=("params_path", "snapshots_path:parquet", "model_dir", "run_path:json", "truth_path:parquet"),
        params_path=params,
        snapshots_path=snapshots,
        model_dir=model_dir,
        run_path=run,
        truth_path=truth,
        metrics_out=metrics,
        plots_dir=plots,
        judged_out=judged,
        headline_out=headline,
        baselines_out=baselines,
    )


@app.command()
def promote(
    judged: Annotated[Path, _opt("The new model's and the baselines' held-out metrics (evaluate's JSON).")],
    model_dir: Annotated[Path, typer.Option("--model-dir", help="The new model's folder.")],
    run: RunOpt,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder to hold the champion model.")],
    params: ParamsOpt = PARAMS,
) -> None:
    """Make the new model champion if it passes the gate; materialise the champion either way."""
    from pipeline.stages import promote as stage

    _run(
        stage.main,
        inputs=("params_path", "judged_path:json", "candidate_dir", "run_path:json"),
        params_path=params,
        judged_path=judged,
        candidate_dir=model_dir,
        run_path=run,
        out_dir=out_dir,
    )


@app.command()
def backtest(
    snapshots: SnapshotsOpt,
    run: RunOpt,
    metrics: Annotated[Path, _opt("Mean metrics over the origins, per scorer (JSON).")],
    table: Annotated[Path, _opt("Per-origin, per-scorer metrics (CSV).")],
    auc_plot: Annotated[
        Path, typer.Option("--auc-plot", help="ROC AUC by origin, a column per scorer (CSV).")
    ],
    figure: Annotated[Path, _opt("Metrics by origin (PNG).")],
    headline: Annotated[
        Path | None, typer.Option(help="Headline metrics for dvc metrics show (JSON): a few numbers.")
    ] = None,
    judged: Annotated[
        Path | None,
        typer.Option(
            help="train's judged model folder (models/candidate/evaluation): the model of the origin it was "
            "fitted for, when fitted by the same recipe from the same snapshots, instead of fitting it again."
        ),
    ] = None,
    baselines: Annotated[
        Path | None,
        typer.Option(
            help="evaluate's baseline scores (Parquet): at the judged model's origin, read instead of "
            "fitting the baselines again when they are of the same rows, recipe and snapshots."
        ),
    ] = None,
    params: ParamsOpt = PARAMS,
) -> None:
    """Rolling-origin backtest of the model and the baselines over the last cutoffs."""
    from pipeline.stages import backtest as stage

    _run(
        stage.main,
        inputs=(
            "params_path",
            "snapshots_path:parquet",
            "run_path:json",
            "baselines_path:parquet",
            "judged_dir",
        ),
        params_path=params,
        snapshots_path=snapshots,
        run_path=run,
        metrics_out=metrics,
        table_out=table,
        auc_out=auc_plot,
        figure_out=figure,
        headline_out=headline,
        judged_dir=judged,
        baselines_path=baselines,
    )


@app.command()
def tune(
    snapshots: SnapshotsOpt,
    out: Annotated[Path, _opt("Best parameters and every trial (JSON).")],
    params: ParamsOpt = PARAMS,
) -> None:
    """Optuna search over the LightGBM parameters (tune.trials; 0 = off)."""
    from pipeline.stages import tune as stage

    _run(
        stage.main,
        inputs=("params_path", "snapshots_path:parquet"),
        params_path=params,
        snapshots_path=snapshots,
        out=out,
    )


benchmark = typer.Typer(help="Measurements on any data.", no_args_is_help=True)
app.add_typer(benchmark, name="benchmark")


@benchmark.command("quality")
def benchmark_quality(
    transactions: Annotated[Path, _opt("A transactions export: CSV or Parquet.")],
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="YAML with the export's `ingest` section (its column mapping) and optionally other "
            "params.yaml sections to override, such as `featurize`."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the table as CSV here.")] = None,
    cutoff: Annotated[
        str | None,
        typer.Option(
            help="Answer a dated question: train only on what was known at this date (YYYY-MM-DD) "
            "and evaluate there; it becomes the latest backtest origin."
        ),
    ] = None,
    horizon: Annotated[int | None, typer.Option(help="Churn = no order within this many days.")] = None,
    simulated: Annotated[
        Path | None,
        typer.Option(
            help="For an export `churn simulate` wrote: the folder with its customers.parquet and "
            "orders.parquet (the simulate params must be those it ran with). Adds the Bayes oracle."
        ),
    ] = None,
    params: ParamsOpt = PARAMS,
) -> None:
    """Backtest the pipeline and every baseline on TRANSACTIONS and print AUC, PR-AUC, Brier, ECE
    and lift at 10% per origin cutoff; with --cutoff, the model's gap to the best baseline there."""

    from pipeline.commands import quality

    _run(
        _echo(quality.main),
        inputs=("params_path", "transactions", "mapping", "simulated"),
        params_path=params,
        transactions=transactions,
        mapping=mapping,
        cutoff=cutoff,
        horizon=horizon,
        simulated=simulated,
        out=out,
    )


data_app = typer.Typer(help="Public data sets mapped onto the transactions contract.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("download")
def data_download(
    name: Annotated[str, typer.Argument(help="Data set: online-retail-ii.")],
    out: Annotated[Path, typer.Option(help="CSV to write.")] = Path("data/raw/online_retail_ii.csv"),
) -> None:
    """Download a public data set (needs internet) and write it as a CSV the documented mapping reads."""

    from pipeline.commands import data

    _run(_echo(data.main), name=name, out=out)


@app.command()
def explain(
    snapshot: ScoringSnapshotOpt,
    model_dir: ChampionOpt,
    run: RunOpt,
    out: Annotated[Path, _opt("SHAP contributions (Parquet).")],
    plots: Annotated[Path, _opt("Folder for the SHAP figures.")],
    params: ParamsOpt = PARAMS,
) -> None:
    """Exact TreeSHAP contributions for every customer in the scoring snapshot."""
    from pipeline.stages import explain as stage

    _run(
        stage.main,
        inputs=("params_path", "snapshot_path:parquet", "model_dir", "run_path:json"),
        params_path=params,
        snapshot_path=snapshot,
        model_dir=model_dir,
        run_path=run,
        shap_out=out,
        plots_dir=plots,
    )


@app.command()
def monitor(
    snapshots: SnapshotsOpt,
    snapshot: ScoringSnapshotOpt,
    model_dir: ChampionOpt,
    shap_values: Annotated[
        Path, typer.Option("--shap", help="SHAP contributions of a sample of the scoring snapshot.")
    ],
    metrics: Annotated[Path, _opt("Drift report (JSON).")],
    table: Annotated[Path, _opt("PSI per feature (CSV).")],
    verdict: Annotated[Path, _opt("Whether the scoring snapshot may be scored, for score (JSON).")],
    headline: Annotated[
        Path | None, typer.Option(help="Headline metrics for dvc metrics show (JSON): a few numbers.")
    ] = None,
    params: ParamsOpt = PARAMS,
) -> None:
    """PSI of every feature, of the churn probabilities and of the SHAP shares, training vs scoring;
    stops (or warns) past monitor.psi_stop."""
    from pipeline.stages import monitor as stage

    _run(
        stage.main,
        inputs=(
            "params_path",
            "snapshots_path:parquet",
            "snapshot_path:parquet",
            "model_dir",
            "shap_path:parquet",
        ),
        params_path=params,
        snapshots_path=snapshots,
        snapshot_path=snapshot,
        model_dir=model_dir,
        shap_path=shap_values,
        metrics_out=metrics,
        table_out=table,
        verdict_out=verdict,
        headline_out=headline,
    )


@app.command()
def score(
    snapshot: ScoringSnapshotOpt,
    model_dir: ChampionOpt,
    fits: Annotated[Path, _opt("featurize's fits (JSON): the BTYD fits at the scoring date, for value.")],
    suppression: Annotated[Path, _opt("Do-not-contact list: a CSV with a customer_id column.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder of the weekly score files.")],
    preview_dir: Annotated[
        Path,
        typer.Option(
            "--preview-dir",
            help="What this run wrote, and where (summary.json); an experiment's would-be file in preview/.",
        ),
    ],
    verdict: Annotated[
        Path | None, typer.Option(help="monitor's verdict (JSON): score only a snapshot it let through.")
    ] = None,
    republish: Annotated[
        bool,
        typer.Option(
            "--republish",
            envvar="CHURN_REPUBLISH",
            help="Replace a week's file published by another model (the earlier one is kept in superseded/).",
        ),
    ] = False,
    headline: Annotated[
        Path | None, typer.Option(help="Headline metrics for dvc metrics show (JSON): a few numbers.")
    ] = None,
    uplift: UpliftOpt = None,
    params: ParamsOpt = PARAMS,
) -> None:
    """Write the weekly churn-risk file for CRM import, and its manifest. Only a production run
    publishes; an experiment (dvc exp run, or CHURN_SANDBOX=1) writes a preview."""
    from pipeline.stages import score as stage

    _run(
        stage.main,
        inputs=(
            "params_path",
            "snapshot_path:parquet",
            "model_dir",
            "fits:json",
            "suppression",
            "verdict:json",
            "uplift_dir",
        ),
        params_path=params,
        snapshot_path=snapshot,
        model_dir=model_dir,
        fits=fits,
        suppression=suppression,
        scores_dir=out_dir,
        preview_dir=preview_dir,
        verdict=verdict,
        republish=republish,
        headline_out=headline,
        uplift_dir=uplift,
    )


@app.command("spark-score")
def spark_score(
    snapshot: Annotated[
        str, typer.Option("--snapshot", help="Scoring snapshot: a Parquet path Spark reads.")
    ],
    model_dir: ChampionOpt,
    out: Annotated[
        str, typer.Option("--out", help="Output Parquet folder (Spark writes one file per partition).")
    ],
    explain: Annotated[bool, typer.Option("--explain", help="Also every feature's SHAP value.")] = False,
    params: ParamsOpt = PARAMS,
) -> None:
    """Churn probabilities (and SHAP values) by partition on the Spark session featurize.spark_master
    names: the scoring path past one machine."""
    from pipeline.commands import spark as stage

    _run(
        stage.main,
        inputs=("params_path", "model_dir"),
        params_path=params,
        snapshot=snapshot,
        model_dir=model_dir,
        out=out,
        explain=explain,
    )


@app.command()
def report(
    transactions: Annotated[Path, _opt("Validated transactions (Parquet).")],
    snapshots: SnapshotsOpt,
    snapshot: ScoringSnapshotOpt,
    scores_dir: Annotated[Path, typer.Option("--scores-dir", help="Folder of the weekly score files.")],
    model_dir: ChampionOpt,
    fits: Annotated[Path, _opt("featurize's fits (JSON): the schedule and the scoring date.")],
    plots: Annotated[Path, _opt("Folder of the evaluation and SHAP figures to embed.")],
    run: RunOpt,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for report.html, summary.md, CSVs.")],
    metrics: Annotated[Path, _opt("Headline figures (JSON).")],
    headline: Annotated[
        Path | None, typer.Option(help="Headline metrics for dvc metrics show (JSON): a few numbers.")
    ] = None,
    evaluation: Annotated[
        Path | None, typer.Option(help="evaluate's metrics (JSON), for the model-vs-baselines table.")
    ] = None,
    backtest: Annotated[
        Path | None, typer.Option(help="backtest's metrics (JSON): mean ROC AUC per scorer beside it.")
    ] = None,
    uplift: UpliftOpt = None,
    params: ParamsOpt = PARAMS,
) -> None:
    """Churn and retention rates, cohorts, CLV and value at risk by segment, predicted vs realized
    churn, the model against its baselines: one self-contained HTML report and a Markdown summary,
    logged to MLflow."""
    from pipeline.stages import report as stage

    _run(
        stage.main,
        inputs=(
            "params_path",
            "transactions:parquet",
            "snapshots_path:parquet",
            "snapshot_path:parquet",
            "scores_dir",
            "model_dir",
            "fits:json",
            "run_path:json",
            "evaluation_path:json",
            "backtest_path:json",
            "uplift_dir",
        ),
        params_path=params,
        transactions=transactions,
        snapshots_path=snapshots,
        snapshot_path=snapshot,
        scores_dir=scores_dir,
        model_dir=model_dir,
        fits=fits,
        plots_dir=plots,
        run_path=run,
        out_dir=out_dir,
        metrics_out=metrics,
        headline_out=headline,
        evaluation_path=evaluation,
        backtest_path=backtest,
        uplift_dir=uplift,
    )


@app.command()
def measure(
    scores: Annotated[Path, _opt("A past weekly score file (CSV) whose horizon has passed.")],
    transactions: Annotated[Path, _opt("Validated transactions (Parquet) covering the horizon after it.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Folder for measure.json, CSVs and report.md.")],
    params: ParamsOpt = PARAMS,
) -> None:
    """Realized churn, the file's realized quality, and the outreach's retention lift over its
    randomized holdout with a 95% interval; logged to MLflow."""
    from pipeline.commands import measure as stage

    _run(
        stage.main,
        inputs=("params_path", "scores_path", "transactions:parquet"),
        params_path=params,
        scores_path=scores,
        transactions=transactions,
        out_dir=out_dir,
    )


@app.command()
def outcomes(
    scores_dir: Annotated[Path, _opt("The folder of weekly score files (data/scores).")],
    transactions: Annotated[Path, _opt("Validated transactions (Parquet) covering the weeks after them.")],
    out: Annotated[Path, _opt("The outcome table to write (Parquet).")],
) -> None:
    """One row per customer and past week whose outcome window has closed: contact, its exact
    probability and policy, retained or not, and the features scored on; the data an uplift model
    learns from (docs/uplift.md)."""
    from pipeline.commands import measure as stage

    _run(
        _echo(stage.outcomes_main),
        inputs=("scores_dir", "transactions:parquet"),
        scores_dir=scores_dir,
        transactions=transactions,
        out=out,
    )


@app.command()
def uplift(
    outcomes: Annotated[Path, _opt("The outcome table of `churn outcomes` (Parquet).")],
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Folder for uplift.json, CSVs, uplift.md and model/.")
    ],
    params: ParamsOpt = PARAMS,
) -> None:
    """Learn whom outreach changes from the randomized contacts of past weeks, judge it on later
    weeks (Qini, policy values with intervals clustered by customer) and decide the file's ranking:
    uplift only when its gain over value at risk is surely above zero (docs/uplift.md)."""
    from pipeline.commands import uplift as command

    _run(
        _echo(command.main),
        inputs=("params_path", "outcomes:parquet"),
        params_path=params,
        outcomes=outcomes,
        out_dir=out_dir,
    )


@app.command("simulate-followup")
def simulate_followup(
    customers: Annotated[Path, _opt("The simulator's per-customer latent rates (Parquet).")],
    scores: Annotated[Path, _opt("A score file of the simulated shop.")],
    out: Annotated[Path, _opt("Transactions in the horizon after the file (Parquet) to write.")],
    truth: Annotated[Path, _opt("The injected effect and the lift it caused (JSON) to write.")],
    effect: Annotated[
        float, typer.Option(help="Chance that contact rescues a customer who would churn.")
    ] = 0.3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """Simulate what happened after a score file, with a known treatment effect for contacted
    customers (on the outreach list, not held out): the test bed for `churn measure`."""
    from pipeline.commands import followup

    _run(
        followup.main,
        inputs=("customers_path:parquet", "scores_path"),
        customers_path=customers,
        scores_path=scores,
        effect=effect,
        seed=seed,
        out=out,
        truth_out=truth,
    )


@app.command("simulate-outcomes")
def simulate_outcomes(
    scores: Annotated[Path, _opt("A score file of the simulated shop, with its kept snapshot beside it.")],
    out: Annotated[Path, _opt("The outcome table to write (Parquet), as churn outcomes writes it.")],
    truth: Annotated[Path, _opt("Each row's true effect of a contact and kind of customer (Parquet).")],
    weeks: Annotated[int, typer.Option(help="Calendar weeks to play.")] = 104,
    replicas: Annotated[int, typer.Option(help="The shop this many times over.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    params: ParamsOpt = PARAMS,
) -> None:
    """Play many weekly files on a score file's customers, with a known effect of contact per
    customer (persuadables, sure things, lost causes, sleeping dogs): an outcome table to try
    `churn uplift` on before real weeks have passed (docs/uplift.md)."""
    from pipeline.commands import followup

    _run(
        _echo(followup.weeks_main),
        inputs=("params_path", "scores_path"),
        params_path=params,
        scores_path=scores,
        weeks=weeks,
        seed=seed,
        replicas=replicas,
        out=out,
        truth_out=truth,
    )


@app.command()
def erase(
    customer: Annotated[list[str], typer.Option(help="A customer id as in the export (repeat for several).")],
    root: Annotated[Path, typer.Option(help="The project folder.")] = Path("."),
    params: ParamsOpt = PARAMS,
) -> None:
    """Remove customers from every data file of the project (raw export, quarantine, validated
    transactions, snapshots, explanations, every week's score file and manifest) and check MLflow's
    artifacts. Then run `dvc repro` and `dvc gc --workspace --force` (see docs/privacy.md)."""

    from pipeline.commands import erase as command

    _run(
        _echo(command.main),
        inputs=("params_path", "root"),
        params_path=params,
        root=root,
        customer_ids=customer,
    )


@app.command("plots-page")
def plots_page(
    out: Annotated[Path, typer.Option(help="The page to write.")] = Path(".dvc/plots/offline.html"),
) -> None:
    """Write the page `dvc plots show` fills, with Vega inlined so plots render offline (needs the
    vl-convert-python package)."""
    from pipeline.commands import plots as command

    _run(_echo(command.main), out=out)


if __name__ == "__main__":
    app()
