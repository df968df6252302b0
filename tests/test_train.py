import numpy as np
import pytest

from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES, get_spec
from edge_echo.train import train, train_with_fit


def test_same_seed_same_weights():
    spec = get_spec("many-to-many", epochs=50)
    a = train(spec, seed=3).model.get_weights()
    b = train(spec, seed=3).model.get_weights()
    c = train(spec, seed=4).model.get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # A different seed must change them, or the check above proves nothing.
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fast_loop_matches_fit(name):
    """The compiled loop does fit's optimisation: same steps, same loss, same weights."""
    spec = get_spec(name, epochs=30)
    fast = train(spec, DEFAULT_SEED)
    slow = train_with_fit(spec, DEFAULT_SEED)
    # fit shuffles the one-to-one batch, which only reorders a float sum.
    assert fast.final_loss == pytest.approx(slow.final_loss, rel=1e-5, abs=1e-9)
    for a, b in zip(fast.model.get_weights(), slow.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # Training must have moved the weights, else equal weights would mean nothing.
    untrained = train(get_spec(name, epochs=1), DEFAULT_SEED).model.get_weights()
    assert not all(np.allclose(a, b) for a, b in zip(fast.model.get_weights(), untrained, strict=True))
