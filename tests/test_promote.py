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
