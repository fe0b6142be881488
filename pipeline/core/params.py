"""Typed view of params.yaml: the only place it is parsed; a misspelt key is an error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.core.errors import PipelineError

CANONICAL_REQUIRED = ("customer_id", "order_ts")
CANONICAL_OPTIONAL = (
    "order_id",
    "product_id",
    "category",
    "quantity",
    "unit_price",
    "country",
    "channel",
)
CANONICAL_COLUMNS = (*CANONICAL_REQUIRED, "amount", *CANONICAL_OPTIONAL)

PositiveInt = Annotated[int, Field(gt=0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimulateParams(_Frozen):
    seed: int
    n_customers: PositiveInt
    start_date: dt.date
    end_date: dt.date
    mean_lines_per_order: Annotated[float, Field(ge=1.0)]
    malformed_share: Share
    return_share: Share
    # the truths are computed at the latest `truth_cutoffs` training cutoffs and the scoring date
    truth_cutoffs: PositiveInt = 3
    # the shop simulated: retail (the bundled sample), drift, seasonal, one_time, grocery
    scenario: Literal["retail", "drift", "seasonal", "one_time", "grocery"] = "retail"

    @model_validator(mode="after")
    def _ordered(self) -> SimulateParams:
        if self.end_date <= self.start_date:
            raise ValueError("simulate.end_date must be after simulate.start_date")
        return self


class IngestParams(_Frozen):
    """How a user's export maps onto the canonical transactions contract."""

    columns: dict[str, str]
    date_formats: list[str] = Field(min_length=1)
    max_quarantine_share: Share
    # timestamps with a UTC offset (formats with %z) become wall-clock time in this IANA zone
    timezone: str | None = None
    # orders outside [valid_from, valid_until] are quarantined; valid_until null = the day ingest runs
    valid_from: dt.date = dt.date(1990, 1, 1)
    valid_until: dt.date | None = None
    max_abs_amount: Annotated[float, Field(gt=0.0)] = 1e6  # a line worth more is a data error
    encoding: str = "utf-8"
    # a CSV's field separator (Excel writes ";" where the decimal mark is a comma) and decimal mark;
    # with "," as the decimal mark, "." may only group thousands: 1.234,56
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    decimal: Literal[".", ","] = "."
    memory_limit: str = "1GB"  # DuckDB's; beyond it the checks across rows spill to disk
    # replace customer ids by HMAC-SHA256 pseudonyms under a key from this environment variable
    pseudonymize: bool = False
    pseudonym_key_env: str = "CHURN_PSEUDONYM_KEY"

    @model_validator(mode="after")
    def _separators_differ(self) -> IngestParams:
        if self.delimiter == self.decimal:
            raise ValueError(
                f"ingest.delimiter and ingest.decimal are both {self.delimiter!r}: a decimal comma needs "
                "another field separator, usually ';'"
            )
        if self.delimiter in ('"', "\n", "\r"):
            raise ValueError(f"ingest.delimiter {self.delimiter!r} cannot separate fields")
        return self

    @model_validator(mode="after")
    def _zone_for_offsets(self) -> IngestParams:
        if any("%z" in f for f in self.date_formats) and not self.timezone:
            raise ValueError(
                "ingest.date_formats parse UTC offsets (%z): set ingest.timezone, e.g. Europe/London"
            )
        return self

    @field_validator("columns")
    @classmethod
    def _known_targets(cls, columns: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(columns) - set(CANONICAL_COLUMNS))
        if unknown:
            raise ValueError(
                f"unknown canonical column(s) {unknown} in ingest.columns; allowed: {list(CANONICAL_COLUMNS)}"
            )
        missing = [c for c in CANONICAL_REQUIRED if c not in columns]
        if missing:
            raise ValueError(f"ingest.columns must map the required column(s) {missing}")
        if "amount" not in columns and not {"quantity", "unit_price"} <= set(columns):
            raise ValueError(
                "ingest.columns must map 'amount', or both 'quantity' and 'unit_price' "
                "so that amount = quantity x unit_price"
            )
        sources = list(columns.values())
        repeated = sorted({s for s in sources if sources.count(s) > 1})
        if repeated:
            raise ValueError(f"source column(s) {repeated} mapped more than once in ingest.columns")
        return columns


class FeaturizeParams(_Frozen):
    # the churn question: no order within this many days. Never adapted to the history; `auto`
    # picks the longest of `horizon_candidates` the history supports
    horizon_days: PositiveInt | Literal["auto"]
    cutoff_every_days: PositiveInt
    n_cutoffs: PositiveInt
    eligibility_lookback_days: PositiveInt
    score_date: dt.date | None = None
    windows_days: list[PositiveInt] = Field(min_length=1)
    trend_days: PositiveInt
    btyd_fit_customers: Annotated[int, Field(ge=100)]
    horizon_candidates: list[PositiveInt] = Field(min_length=1)
    adapt_to_history: bool
    # the engine the Ibis feature definitions run on: embedded DuckDB, or Spark (a cluster's master
    # URL, or local[N]) with extra Spark settings
    backend: Literal["duckdb", "pyspark"] = "duckdb"
    spark_master: str = "local[2]"
    spark_conf: dict[str, str] = Field(default_factory=dict)

    @property
    def horizon(self) -> int:
        """`horizon_days` once a number: the schedule resolves `auto` before features are built."""
        if self.horizon_days == "auto":
            raise ParamsError("featurize.horizon_days is 'auto' here; it is resolved by the cutoff schedule")
        return self.horizon_days

    # DuckDB's memory limit (e.g. "2GB"; null = its default, 80% of RAM) and where it spills beyond it
    # DuckDB's memory for the feature queries; beyond it they spill to `temp_directory` (null: a
    # private folder under the system's temporary folder). Null: DuckDB's default, 80% of the RAM
    memory_limit: str | None = "2GB"
    temp_directory: str | None = None


class TrainParams(_Frozen):
    test_cutoffs: PositiveInt
    # customers (every cutoff of each) held out of the training cutoffs to stop boosting and fit the
    # calibrator, instead of whole cutoffs that would cost a horizon of the newest labels
    valid_share: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    # the calibrator is fitted on the latest closed cutoffs only: churn rates move with the seasons
    calibration_cutoffs: PositiveInt = 2
    seed: int
    num_threads: PositiveInt
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)]
    num_leaves: Annotated[int, Field(ge=2)]
    min_child_samples: PositiveInt
    feature_fraction: Annotated[float, Field(gt=0.0, le=1.0)]
    lambda_l2: Annotated[float, Field(ge=0.0)]
    max_rounds: PositiveInt
    early_stopping_rounds: PositiveInt
    min_customers: PositiveInt
    calibration_min_gain: Annotated[float, Field(ge=0.0, lt=1.0)]
    min_class_rows: PositiveInt
    # score with the blend of the booster, the RFM regression and the BTYD models (`calibration.
    # fit_blend`); false: the booster with the calibrator of lowest cross-validated log loss
    blend: bool = True
    # refit on every row (held-out customers too) with the rounds early stopping found; false: score
    # with the model the blend was fitted on
    refit: bool = False
    # boost from this BTYD model's log-odds of no order (LightGBM's initial score): it is fitted at
    # each cutoff, so the booster's level follows it past the last closed label; null: boost from
    # the training churn rate
    boost_from: Literal["bgnbd_p_no_order", "pnbd_p_no_order"] | None = "bgnbd_p_no_order"
    # the blend ranks, the booster sets the level: at each cutoff the blend's mean probability is
    # made the booster's mean there (`calibration.Calibrator`)
    level: bool = True
    # at most this many training rows for a fit: above it, every row of a hash-chosen share of the
    # customers (`fitting.cap_rows`); null: every row. The held-out quality stops improving well
    # below the cap (docs/benchmarks.md, "Training rows")
    max_rows: PositiveInt | None = None


class EvaluateParams(_Frozen):
    top_share: Annotated[float, Field(gt=0.0, lt=1.0)]
    calibration_bins: Annotated[int, Field(ge=2)]
    new_customer_days: PositiveInt


class TuneParams(_Frozen):
    trials: Annotated[int, Field(ge=0)]


class BacktestParams(_Frozen):
    origins: PositiveInt


class PromoteParams(_Frozen):
    """The gate a new model passes to become `champion`."""

    max_ece: Annotated[float, Field(gt=0.0, lt=1.0)]
    must_beat: list[str] = Field(min_length=1)
    # how far below the current champion's ROC AUC and PR AUC, on the same held-out rows, a
    # candidate may fall and still be promoted
    champion_tolerance: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.002


class ExplainParams(_Frozen):
    # an evenly spaced sample of the scoring snapshot explained for the global figures and the
    # drift monitor's SHAP shares; the score file's reasons are computed by the score stage
    sample_rows: PositiveInt
    # exact TreeSHAP runs over this many rows at a time (memory: rows x features x 8 bytes)
    chunk_rows: PositiveInt


class RiskTiers(_Frozen):
    high: Share
    medium: Share

    @model_validator(mode="after")
    def _ordered(self) -> RiskTiers:
        if not self.medium < self.high:
            raise ValueError("score.risk_tiers.medium must be below score.risk_tiers.high")
        return self


class ValueTiers(_Frozen):
    """Shares of the scored customers, from the highest predicted value down."""

    high: Annotated[float, Field(gt=0.0, lt=1.0)]
    mid: Annotated[float, Field(ge=0.0, lt=1.0)]

    @model_validator(mode="after")
    def _fits(self) -> ValueTiers:
        if self.high + self.mid > 1.0:
            raise ValueError("score.value_tiers.high + score.value_tiers.mid must not exceed 1")
        return self


LIFECYCLE_STAGES = ("new", "active", "at_risk", "lapsed", "reactivated")
VALUE_TIERS = ("high", "mid", "low")
RISK_TIERS = ("high", "medium", "low")


class CampaignRule(_Frozen):
    """A customer gets the first campaign whose conditions all hold; an absent condition holds."""

    campaign: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    lifecycle: list[str] | None = None
    value_tier: list[str] | None = None
    risk_tier: list[str] | None = None

    @model_validator(mode="after")
    def _known(self) -> CampaignRule:
        for name, allowed in (
            ("lifecycle", LIFECYCLE_STAGES),
            ("value_tier", VALUE_TIERS),
            ("risk_tier", RISK_TIERS),
        ):
            unknown = sorted(set(getattr(self, name) or []) - set(allowed))
            if unknown:
                raise ValueError(
                    f"campaign {self.campaign!r}: unknown {name} {unknown}; allowed {list(allowed)}"
                )
        return self


class ScoreParams(_Frozen):
    risk_tiers: RiskTiers
    n_reasons: Annotated[int, Field(ge=1, le=3)]
    min_reason_points: Annotated[float, Field(ge=0.0, lt=100.0)]  # weaker causes are not worth saying
    value_horizon_days: PositiveInt
    value_tiers: ValueTiers
    new_customer_days: PositiveInt
    lapsed_days: PositiveInt
    campaigns: list[CampaignRule] = Field(min_length=1)
    no_campaign: str  # the campaign name that means "leave alone": never on the outreach list
    contact_budget: Annotated[int, Field(ge=0)]
    holdout_share: Annotated[float, Field(ge=0.0, lt=1.0)]
    holdout_key: Annotated[str, Field(min_length=1)]
    # a randomized exploration sample below the list's cut-off, so that how customers off the
    # list respond to a contact can be measured (docs/uplift.md): this share of them, at most
    # `exploration_budget` a week
    exploration_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02
    exploration_budget: Annotated[int, Field(ge=0)] = 200
    # of each pool member's chance of exploration, this share is the same for every member and the
    # rest is in proportion to predicted value (`outreach.exploration_chances`); 1 = an even draw
    exploration_even_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    # who gets reasons: the outreach list (ranked rows, holdout included) or every scored customer
    reasons_for: Literal["outreach", "all"]
    # the causes that may be given as reasons (core/reasons.py); the others still move the
    # probability. By default not tenure, time of day (habits) or country: nothing to act on, and
    # a country may be sensitive to say
    reason_causes: list[str] = Field(
        default=["lapse", "order_rate", "spend", "returns", "breadth", "basket", "season", "channel"],
        min_length=1,
    )
    # the outreach list takes only customers in these risk tiers, then ranks them by value at risk
    outreach_tiers: list[Literal["high", "medium", "low"]] = Field(default=["high", "medium"], min_length=1)
    # the currency of the amounts, for money in reasons and the report
    currency: Annotated[str, Field(min_length=1, max_length=8)] = "GBP"

    @model_validator(mode="after")
    def _catch_all(self) -> ScoreParams:
        last = self.campaigns[-1]
        if last.lifecycle or last.value_tier or last.risk_tier:
            raise ValueError(
                "the last of score.campaigns must have no conditions, so every customer gets one"
            )
        return self


class MonitorParams(_Frozen):
    """Drift between the latest training cutoff and the scoring snapshot (PSI)."""

    bins: Annotated[int, Field(ge=2)]
    psi_warn: Annotated[float, Field(gt=0.0)]
    psi_stop: Annotated[float, Field(gt=0.0)]
    action: Literal["stop", "warn"]
    shap_rows: PositiveInt

    @model_validator(mode="after")
    def _ordered(self) -> MonitorParams:
        if self.psi_stop < self.psi_warn:
            raise ValueError("monitor.psi_stop must not be below monitor.psi_warn")
        return self


class UpliftParams(_Frozen):
    """Whom a contact changes (`churn uplift`, docs/uplift.md): the learner that ranks and the
    cost of one contact in `score.currency`. Each period of past weeks is judged by the learner
    fitted on the periods before it."""

    learner: Literal["t", "x", "dr"] = "x"
    contact_cost: Annotated[float, Field(ge=0.0)] = 1.0


class MlflowParams(_Frozen):
    experiment: str
    registered_model: str


class Params(_Frozen):
    simulate: SimulateParams
    ingest: IngestParams
    featurize: FeaturizeParams
    train: TrainParams
    evaluate: EvaluateParams
    promote: PromoteParams
    backtest: BacktestParams
    tune: TuneParams
    explain: ExplainParams
    score: ScoreParams
    monitor: MonitorParams
    uplift: UpliftParams = UpliftParams()
    mlflow: MlflowParams


class ParamsError(PipelineError):
    """params.yaml is missing, unreadable or does not match the typed model."""


def load_params(path: Path | str = "params.yaml") -> Params:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ParamsError(f"{path}: parameter file not found") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    return validate_params(raw, f"{path}: invalid parameters")


def validate_params(raw: object, context: str) -> Params:
    """Params from parsed YAML; each problem on its own line as `section.key: message`."""
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ParamsError(f"{context}\n" + "\n".join(lines)) from exc
