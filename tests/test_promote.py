import pytest

from pipeline.core.params import PromoteParams
from pipeline.stages.promote import gate

PARAMS = PromoteParams(max_ece=0.03, must_beat=["recency", "pareto_nbd"])


def report(model_auc=0.88, model_pr=0.94, ece=0.01):
    return {
        "model": {"roc_auc": model_auc, "pr_auc": model_pr, "ece": ece},
        "baselines": {
            "recency": {"roc_auc": 0.85, "pr_auc": 0.93},
            "pareto_nbd": {"roc_auc": 0.883, "pr_auc": 0.945},
        },
    }


def test_a_model_that_beats_every_baseline_passes():
    assert gate(report(model_auc=0.89, model_pr=0.95), PARAMS) == []


def test_the_gate_refuses_a_model_worse_than_a_baseline():
    assert gate(report(), PARAMS) == [
        "roc_auc 0.8800 does not beat baseline pareto_nbd (0.8830)",
        "pr_auc 0.9400 does not beat baseline pareto_nbd (0.9450)",
    ]


def test_a_tie_is_not_a_win():
    assert gate(report(model_auc=0.883, model_pr=0.95), PARAMS) == [
        "roc_auc 0.8830 does not beat baseline pareto_nbd (0.8830)"
    ]


@pytest.mark.parametrize(("ece", "refused"), [(0.03, False), (0.0301, True)])
def test_the_gate_bounds_calibration_error(ece, refused):
    refusals = gate(report(model_auc=0.9, model_pr=0.96, ece=ece), PARAMS)
    assert bool(refusals) is refused


def test_only_the_named_baselines_count_and_each_must_exist():
    only_recency = PromoteParams(max_ece=0.03, must_beat=["recency"])
    assert gate(report(), only_recency) == []
    unknown = PromoteParams(max_ece=0.03, must_beat=["recency", "survival_forest"])
    assert gate(report(), unknown) == ["baseline survival_forest was not evaluated"]


def with_champion(champion_auc, champion_pr, compared=True, **model):
    return report(**model) | {
        "rows": 1000,
        "churn_rate": 0.7,
        "champion": {"version": "3", "compared": compared, "roc_auc": champion_auc, "pr_auc": champion_pr}
        if compared
        else {
            "version": "3",
            "compared": False,
            "why": "it predicts churn over 60 days, the candidate over 90",
        },
    }


def test_a_candidate_worse_than_the_champion_beyond_the_tolerance_is_refused():
    # 0.89 vs 0.8925: 0.0025 below, over the 0.002 tolerance; PR AUC 0.95 vs 0.951 is within it
    assert gate(with_champion(0.8925, 0.951, model_auc=0.89, model_pr=0.95), PARAMS) == [
        "roc_auc 0.8900 is below champion version 3 (0.8925) by more than promote.champion_tolerance = 0.002"
    ]
    assert gate(with_champion(0.8919, 0.951, model_auc=0.89, model_pr=0.95), PARAMS) == []
    strict = PARAMS.model_copy(update={"champion_tolerance": 0.0})
    assert gate(with_champion(0.8901, 0.95, model_auc=0.89, model_pr=0.95), strict) == [
        "roc_auc 0.8900 is below champion version 3 (0.8901) by more than promote.champion_tolerance = 0.0"
    ]


def test_a_champion_that_answers_another_question_is_not_compared():
    assert gate(with_champion(0.99, 0.99, compared=False, model_auc=0.89, model_pr=0.95), PARAMS) == []


def test_the_verdict_on_the_version_says_what_was_compared_and_why_it_was_refused():
    from pipeline.core.runs import RunKind
    from pipeline.stages.promote import verdict

    judged = with_champion(0.8925, 0.951, model_auc=0.89, model_pr=0.95)
    refusals = gate(judged, PARAMS)
    description, tags = verdict(judged, refusals, kind=RunKind(None), promoted=False)
    assert description == (
        "Held out: 1000 customers, churn rate 0.700. ROC AUC 0.8900, PR AUC 0.9500, ECE 0.0100; best "
        "baseline pareto_nbd 0.8830 (+0.0070). Champion version 3 on the same rows: ROC AUC 0.8925, PR AUC "
        "0.9510. Refused: roc_auc 0.8900 is below champion version 3 (0.8925) by more than "
        "promote.champion_tolerance = 0.002."
    )
    assert tags == {
        "gate": "refused",
        "promoted": "false",
        "run": "production",
        "roc_auc": "0.8900",
        "pr_auc": "0.9500",
        "ece": "0.0100",
        "roc_auc_gap_to_best_baseline": "+0.0070",
        "compared_with_champion": "3",
        "roc_auc_gap_to_champion": "-0.0025",
    }
    passed = with_champion(0.8900, 0.95, model_auc=0.891, model_pr=0.95)
    description, tags = verdict(passed, [], kind=RunKind("lr-0.1"), promoted=False)
    assert description.endswith("Passed the gate; not promoted, as experiment lr-0.1 publishes nothing.")
    assert (tags["gate"], tags["promoted"], tags["run"]) == ("passed", "false", "lr-0.1")
