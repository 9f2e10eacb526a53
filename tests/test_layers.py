import numpy as np
import pytest

pytest.importorskip("keras")

from emotf.layers import PairDistance  # noqa: E402


def test_pair_distance_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 3)).astype("float32")
    v = rng.normal(size=(5, 3)).astype("float32")
    partner = np.array([[0, 1], [1, 4], [2, 2], [3, 0], [4, 3]], "int32")
    d = np.asarray(PairDistance()([a, v, partner]))
    want = np.linalg.norm(a[:, None, :] - v[partner], axis=-1)
    np.testing.assert_allclose(d, want, rtol=1e-5)
    assert PairDistance.from_config(PairDistance(epsilon=1e-9).get_config()).epsilon == 1e-9
