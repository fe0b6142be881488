import numpy as np
import pytest

from pipeline.core.quadrature import gamma_nodes


@pytest.mark.parametrize("shape", [0.6, 2.5, 40.0])
def test_laguerre_nodes_integrate_the_gamma_moments_exactly(shape):
    """n Gauss-Laguerre nodes are exact for polynomials up to degree 2n - 1: the Gamma(shape, 1)
    moments E[X^k] = shape (shape + 1) ... (shape + k - 1)."""
    x, w = gamma_nodes(shape, 8)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    for k in range(1, 6):
        assert np.sum(w * x**k) == pytest.approx(np.prod(shape + np.arange(k)), rel=1e-10)


def test_past_sixty_the_wilson_hilferty_nodes_keep_mean_and_variance():
    x, w = gamma_nodes(80.0, 8)
    mean = np.sum(w * x)
    assert (x >= 0).all() and w.sum() == pytest.approx(1.0, abs=1e-14)
    assert mean == pytest.approx(80.0, rel=1e-4)
    assert np.sum(w * (x - mean) ** 2) == pytest.approx(80.0, rel=1e-2)
    # the two rules meet at the switch: the same mean on either side of it
    below, above = gamma_nodes(60.0, 8), gamma_nodes(60.000001, 8)
    assert np.sum(below[0] * below[1]) == pytest.approx(np.sum(above[0] * above[1]), rel=1e-4)
