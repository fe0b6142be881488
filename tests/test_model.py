import numpy as np

from pipeline.core.model import risk_deciles


def test_deciles_put_the_riskiest_tenth_first_and_keep_row_order_on_ties():
    p = np.array([0.1, 0.9, 0.5, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4])
    assert risk_deciles(p).tolist() == [10, 1, 5, 6, 8, 3, 9, 2, 4, 7]
    assert risk_deciles(np.array([0.2, 0.2, 0.2])).tolist() == [1, 4, 7]
