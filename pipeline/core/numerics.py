"""Fits whose results are the same bytes on every CPU: a quasi-Newton minimiser for a few
parameters and logistic regression by Newton's method.

Why not scipy's L-BFGS-B or scikit-learn's lbfgs: both call BLAS, and OpenBLAS picks its kernels
per CPU at run time (AVX-512 on one machine, AVX2 on another). The kernels round differently, the
optimiser takes another path, and the fitted parameters differ in the sixth digit, which changes
every downstream byte (features, model, score file). Here the few-parameter linear algebra is
done in Python floats, one IEEE operation at a time in a fixed order, and data-sized work only in
element-wise numpy operations and sums, which use no BLAS; so the same data give the same iterates
wherever they run. Measured on the sample: the BTYD fits give identical parameters with OpenBLAS's
SkylakeX and Haswell kernels, where L-BFGS-B gave a = 0.711067 and 0.711069.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Minimum:
    x: tuple[float, ...]
    fun: float
    iterations: int
    evaluations: int
    message: str


def _solve(a: list[list[float]], b: list[float]) -> list[float] | None:
    """x with a x = b by Gaussian elimination with partial pivoting; None when a is singular."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if m[pivot][col] == 0.0 or not math.isfinite(m[pivot][col]):
            return None
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            factor = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= factor * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def minimize(
    fun: Callable[[Sequence[float]], float],
    x0: Sequence[float],
    lower: float | Sequence[float] = -math.inf,
    upper: float | Sequence[float] = math.inf,
    *,
    step: float = 1e-7,
    gtol: float = 1e-8,
    ftol: float = 1e-14,
    max_iter: int = 300,
) -> Minimum:
    """BFGS with forward-difference gradients, an Armijo backtracking line search and every
    coordinate kept in [lower, upper] (one bound for all, or one per coordinate). `fun` returns a
    finite float (or inf for points to avoid). Stops when the largest gradient component is below
    `gtol`, when a step gains less than `ftol` relative to the objective, or when no step along the
    search direction improves it (the objective's rounding noise has been reached)."""
    n = len(x0)
    evaluations = 0

    def f(x: list[float]) -> float:
        nonlocal evaluations
        evaluations += 1
        value = float(fun(x))
        return value if math.isfinite(value) else math.inf

    def gradient(x: list[float], fx: float) -> list[float]:
        g = []
        for i in range(n):
            h = step * max(1.0, abs(x[i]))
            moved = x[:]
            moved[i] = x[i] + h if x[i] + h <= hi[i] else x[i] - h
            h_exact = moved[i] - x[i]
            g.append((f(moved) - fx) / h_exact)
        return g

    lo = [float(lower)] * n if isinstance(lower, int | float) else [float(v) for v in lower]
    hi = [float(upper)] * n if isinstance(upper, int | float) else [float(v) for v in upper]
    x = [min(max(float(v), lo[i]), hi[i]) for i, v in enumerate(x0)]
    fx = f(x)
    if not math.isfinite(fx):
        raise FloatingPointError("the objective is not finite at the starting point")
    g = gradient(x, fx)
    identity = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    inverse = [row[:] for row in identity]
    message = f"stopped after {max_iter} iterations"
    iteration = 0
    for iteration in range(1, max_iter + 1):
        if max(abs(v) for v in g) <= gtol:
            message = "gradient below gtol"
            break
        d = [-sum(inverse[i][j] * g[j] for j in range(n)) for i in range(n)]
        slope = sum(d[i] * g[i] for i in range(n))
        if not slope < 0.0:  # the curvature estimate went bad: restart from steepest descent
            inverse = [row[:] for row in identity]
            d = [-v for v in g]
            slope = -sum(v * v for v in g)
        t = min(1.0, 2.0 / max(abs(v) for v in d))  # at most 2 units in any coordinate per step
        while True:
            trial = [min(max(x[i] + t * d[i], lo[i]), hi[i]) for i in range(n)]
            f_trial = f(trial)
            if f_trial <= fx + 1e-4 * t * slope:
                break
            t *= 0.5
            if t < 1e-12:
                return Minimum(
                    x=tuple(x),
                    fun=fx,
                    iterations=iteration,
                    evaluations=evaluations,
                    message="no further descent (rounding noise)",
                )
        g_trial = gradient(trial, f_trial)
        s = [trial[i] - x[i] for i in range(n)]
        y = [g_trial[i] - g[i] for i in range(n)]
        sy = sum(s[i] * y[i] for i in range(n))
        gain = fx - f_trial
        x, fx, g = trial, f_trial, g_trial
        if sy > 1e-300:
            if iteration == 1:  # scale the first estimate to the observed curvature
                yy = sum(v * v for v in y)
                inverse = [[v * sy / yy for v in row] for row in inverse]
            rho = 1.0 / sy
            hy = [sum(inverse[i][j] * y[j] for j in range(n)) for i in range(n)]
            yhy = sum(y[i] * hy[i] for i in range(n))
            inverse = [
                [
                    inverse[i][j]
                    - rho * (hy[i] * s[j] + s[i] * hy[j])
                    + (rho * rho * yhy + rho) * s[i] * s[j]
                    for j in range(n)
                ]
                for i in range(n)
            ]
        if gain <= ftol * max(1.0, abs(fx)):
            message = "relative gain below ftol"
            break
    return Minimum(x=tuple(x), fun=fx, iterations=iteration, evaluations=evaluations, message=message)


@dataclass(frozen=True)
class Logistic:
    """P(y = 1 | x) = sigmoid(intercept + coef . x), on standardised columns when `mean` and
    `scale` are set."""

    coef: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    def decision(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(len(x), -1)
        z = np.full(len(x), self.intercept)
        for j, w in enumerate(self.coef):
            z = z + w * ((x[:, j] - self.mean[j]) / self.scale[j])
        return z

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision(x)))


def logistic_regression(
    x: np.ndarray, y: np.ndarray, c: float = 1.0, standardize: bool = True, max_iter: int = 100
) -> Logistic:
    """Maximum likelihood with scikit-learn's L2 penalty: minimise C sum(log loss) + |coef|^2 / 2
    (the intercept unpenalised), by Newton's method with step halving. The gradient and Hessian
    are sums over rows of element-wise products (pairwise sums, no BLAS)."""
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    y = np.asarray(y, dtype=float)
    k = x.shape[1]
    if standardize:
        mean = tuple(float(np.sum(x[:, j]) / len(x)) for j in range(k))
        spread = [float(np.sqrt(np.sum((x[:, j] - mean[j]) ** 2) / len(x))) for j in range(k)]
        scale = tuple(s if s > 0 else 1.0 for s in spread)
    else:
        mean, scale = (0.0,) * k, (1.0,) * k
    columns = [np.ones(len(x))] + [(x[:, j] - mean[j]) / scale[j] for j in range(k)]
    penalty = [0.0] + [1.0 / c] * k

    def objective(w: list[float]) -> tuple[float, np.ndarray]:
        z = sum((w[j] * columns[j] for j in range(1, k + 1)), start=np.full(len(x), w[0]))
        # log(1 + e^z) - y z, computed without overflow
        loss = float(np.sum(np.logaddexp(0.0, z) - y * z))
        return loss + 0.5 * sum(penalty[j] * w[j] * w[j] for j in range(k + 1)), z

    w = [0.0] * (k + 1)
    value, z = objective(w)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-z))
        residual, weight = p - y, p * (1.0 - p)
        grad = [float(np.sum(residual * columns[j])) + penalty[j] * w[j] for j in range(k + 1)]
        hess = [
            [
                float(np.sum(weight * columns[i] * columns[j])) + (penalty[i] if i == j else 0.0)
                for j in range(k + 1)
            ]
            for i in range(k + 1)
        ]
        step = _solve(hess, grad)
        if step is None:
            break
        t = 1.0
        while t > 1e-10:
            trial = [w[j] - t * step[j] for j in range(k + 1)]
            trial_value, trial_z = objective(trial)
            if trial_value <= value:
                break
            t *= 0.5
        else:
            break
        gain = value - trial_value
        w, value, z = trial, trial_value, trial_z
        if gain <= 1e-13 * max(1.0, abs(value)):
            break
    return Logistic(coef=tuple(w[1:]), intercept=w[0], mean=mean, scale=scale)
