"""The CPU-independent fits: they must find the optimum, respect bounds and match closed forms."""

import math

import numpy as np
import pytest

from pipeline.core.numerics import _solve, logistic_regression, minimize


def rosenbrock(x):
    return sum(100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2 for i in range(len(x) - 1))


def test_minimize_finds_the_rosenbrock_minimum_in_four_dimensions():
    result = minimize(rosenbrock, [-1.2, 1.0, -1.2, 1.0], gtol=1e-10, ftol=0.0, max_iter=2000)
    np.testing.assert_allclose(result.x, [1.0, 1.0, 1.0, 1.0], rtol=0, atol=1e-4)
    assert result.fun < 1e-8


def test_minimize_keeps_every_coordinate_within_the_bounds():
    # unconstrained minimum at (3, -3); the box [-1, 1] puts it at the corner (1, -1)
    result = minimize(
        fun=lambda x: (x[0] - 3.0) ** 2 + (x[1] + 3.0) ** 2, x0=[0.0, 0.0], lower=-1.0, upper=1.0
    )
    assert result.x == (1.0, -1.0)


def test_minimize_treats_non_finite_values_as_points_to_avoid():
    # log(x) is undefined below zero: the search must stay where it is finite
    result = minimize(lambda x: x[0] - math.log(x[0]) if x[0] > 0 else math.nan, [5.0])
    assert result.x[0] == pytest.approx(1.0, abs=1e-6)


def test_minimize_is_repeatable_to_the_bit():
    a = minimize(rosenbrock, [-1.2, 1.0, 0.5])
    b = minimize(rosenbrock, [-1.2, 1.0, 0.5])
    assert a == b


def test_solve_matches_a_hand_solved_system_and_reports_singular_ones():
    assert _solve([[2.0, 1.0], [1.0, 3.0]], [3.0, 5.0]) == pytest.approx([0.8, 1.4])
    assert _solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0]) is None


def test_logistic_regression_on_one_binary_feature_gives_the_two_group_log_odds():
    # group 0: 1 of 4 churned, group 1: 3 of 4; with no penalty the MLE is the groups' log odds
    x = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    model = logistic_regression(x, y, c=1e12, standardize=False)
    assert model.intercept == pytest.approx(math.log(1 / 3), abs=1e-8)
    assert model.coef[0] == pytest.approx(2 * math.log(3), abs=1e-8)
    np.testing.assert_allclose(model.predict_proba(np.array([0.0, 1.0])), [0.25, 0.75], atol=1e-9)


def test_logistic_regression_penalty_shrinks_the_coefficient_as_scikit_learn_defines_it():
    # C sum(log loss) + coef^2 / 2: at the optimum the gradient is zero, checked by hand here
    x = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    y = np.array([1, 0, 0, 0, 1, 1, 1, 0], dtype=float)
    model = logistic_regression(x, y, c=0.5, standardize=False)
    p = model.predict_proba(x)
    assert abs(0.5 * np.sum(p - y)) < 1e-9  # intercept: unpenalised
    assert abs(0.5 * np.sum((p - y) * x) + model.coef[0]) < 1e-9
    assert 0 < model.coef[0] < 2 * math.log(3)


def test_standardised_logistic_regression_predicts_the_same_as_on_raw_columns_without_penalty():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 2)) * [10.0, 0.1] + [50.0, 1.0]
    y = (rng.random(500) < 1 / (1 + np.exp(-(0.05 * (x[:, 0] - 50) + 3 * (x[:, 1] - 1))))).astype(float)
    raw = logistic_regression(x, y, c=1e12, standardize=False)
    scaled = logistic_regression(x, y, c=1e12, standardize=True)
    np.testing.assert_allclose(raw.predict_proba(x), scaled.predict_proba(x), rtol=0, atol=1e-7)
