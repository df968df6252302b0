import numpy as np
import pytest

from edge_echo.errors import UsageError
from edge_echo.specs import MODEL_NAMES, get_spec, parse_model_names
from edge_echo.train import build_model

SEED_TABLE = {
    # name: (X shape, y shape, params, epochs, batch) at length 5, from SEED.md
    "one-to-one": ((5, 1, 1), (5, 1), 146, 1000, 5),
    "many-to-one": ((1, 5, 1), (1, 5), 170, 500, 1),
    "many-to-many": ((1, 5, 1), (1, 5, 1), 146, 1000, 1),
}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_seed_configuration(name):
    x_shape, y_shape, params, epochs, batch = SEED_TABLE[name]
    spec = get_spec(name)
    x, y = spec.training_data()
    assert (x.shape, y.shape) == (x_shape, y_shape)
    np.testing.assert_allclose(x.ravel(), [0.0, 0.2, 0.4, 0.6, 0.8], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(x.ravel(), y.ravel())
    assert (spec.param_count, spec.epochs, spec.batch_size) == (params, epochs, batch)
    assert build_model(spec).count_params() == params


@pytest.mark.parametrize("length", [1, 3, 8])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_units_follow_length(name, length):
    spec = get_spec(name, length)
    model = build_model(spec)
    assert model.count_params() == spec.param_count
    assert model.get_layer("lstm").units == length
    assert tuple(model.output.shape[1:]) == spec.output_shape


def test_layers_as_the_seed_describes():
    assert get_spec("many-to-many").layers == ["LSTM(5, return_sequences=True)",
                                               "TimeDistributed(Dense(1))"]
    assert get_spec("many-to-one").layers == ["LSTM(5)", "Dense(5)"]


@pytest.mark.parametrize("bad", [0, -1, 129, 10**6])
def test_length_out_of_range(bad):
    with pytest.raises(UsageError, match="--length"):
        get_spec("one-to-one", bad)


def test_model_selection():
    assert parse_model_names(None) == list(MODEL_NAMES)
    assert parse_model_names(["many-to-many,one-to-one"]) == ["one-to-one", "many-to-many"]
    with pytest.raises(UsageError, match="unknown model two-to-two"):
        parse_model_names(["two-to-two"])
