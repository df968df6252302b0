"""The echo models of the seed notebook, declared once.

Everything else (training, converters, runners, tests) reads shapes, names,
epochs and batch sizes from here, as Optimum's per-architecture configs do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .defaults import DEFAULT_LENGTH, DEFAULT_SEED, MAX_LENGTH
from .errors import UsageError

__all__ = ["DEFAULT_LENGTH", "DEFAULT_SEED", "MAX_LENGTH"]
MAX_EPOCHS = 100_000

INPUT_NAME = "x"
OUTPUT_NAME = "y"


def lstm_params(inputs: int, units: int) -> int:
    return 4 * ((inputs + 1) * units + units * units)


def dense_params(inputs: int, outputs: int) -> int:
    return inputs * outputs + outputs


@dataclass(frozen=True)
class EchoSpec:
    """One seed configuration at one sequence length."""

    name: str
    length: int
    epochs: int
    batch_size: int
    # Shapes of one sample, without the batch dimension.
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    return_sequences: bool
    time_distributed: bool
    dense_units: int
    summary: str

    @property
    def units(self) -> int:
        return self.length

    @property
    def param_count(self) -> int:
        features = self.input_shape[-1]
        return lstm_params(features, self.units) + dense_params(self.units, self.dense_units)

    @property
    def layers(self) -> list[str]:
        lstm = f"LSTM({self.units}{', return_sequences=True' if self.return_sequences else ''})"
        dense = f"Dense({self.dense_units})"
        return [lstm, f"TimeDistributed({dense})" if self.time_distributed else dense]

    def sequence(self) -> np.ndarray:
        return np.array([i / self.length for i in range(self.length)], dtype=np.float32)

    def training_data(self) -> tuple[np.ndarray, np.ndarray]:
        """X and y exactly as the notebook shapes them."""
        seq = self.sequence()
        samples = self.length // int(np.prod(self.input_shape))
        x = seq.reshape((samples, *self.input_shape))
        y = seq.reshape((samples, *self.output_shape))
        return x, y

    def describe(self) -> dict:
        return {
            "name": self.name,
            "length": self.length,
            "units": self.units,
            "layers": self.layers,
            "param_count": self.param_count,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "optimizer": "adam",
            "loss": "mean_squared_error",
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "summary": self.summary,
        }


def _one_to_one(length: int) -> EchoSpec:
    return EchoSpec(
        name="one-to-one", length=length, epochs=1000, batch_size=length,
        input_shape=(1, 1), output_shape=(1,), return_sequences=False,
        time_distributed=False, dense_units=1,
        summary="one time step per sample; the LSTM carries no memory between items",
    )


def _many_to_one(length: int) -> EchoSpec:
    return EchoSpec(
        name="many-to-one", length=length, epochs=500, batch_size=1,
        input_shape=(length, 1), output_shape=(length,), return_sequences=False,
        time_distributed=False, dense_units=length,
        summary="whole sequence in; Dense emits the whole sequence from the last state",
    )


def _many_to_many(length: int) -> EchoSpec:
    return EchoSpec(
        name="many-to-many", length=length, epochs=1000, batch_size=1,
        input_shape=(length, 1), output_shape=(length, 1), return_sequences=True,
        time_distributed=True, dense_units=1,
        summary="LSTM output at every step; TimeDistributed(Dense(1)) maps each step to one value",
    )


_BUILDERS = {"one-to-one": _one_to_one, "many-to-one": _many_to_one, "many-to-many": _many_to_many}
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def check_length(length: int, max_length: int = MAX_LENGTH) -> int:
    if not 1 <= length <= max_length:
        raise UsageError(f"--length must be between 1 and {max_length}, got {length}")
    return length


def check_epochs(epochs: int | None) -> int | None:
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise UsageError(f"--epochs must be between 1 and {MAX_EPOCHS}, got {epochs}")
    return epochs


def parse_model_names(values: list[str] | None) -> list[str]:
    """Accept repeated options and comma-separated lists; keep the canonical order."""
    if not values:
        return list(MODEL_NAMES)
    wanted = {v.strip() for item in values for v in item.split(",") if v.strip()}
    unknown = sorted(wanted - set(MODEL_NAMES))
    if unknown:
        raise UsageError(
            f"unknown model {', '.join(unknown)}; choose from {', '.join(MODEL_NAMES)}"
        )
    if not wanted:
        raise UsageError(f"--models is empty; choose from {', '.join(MODEL_NAMES)}")
    return [n for n in MODEL_NAMES if n in wanted]


def get_spec(name: str, length: int = DEFAULT_LENGTH, epochs: int | None = None,
             max_length: int = MAX_LENGTH) -> EchoSpec:
    """max_length: the CLI's range unless a caller (benchmarks/bench_scaling.py) goes past it
    on purpose, knowing what it costs."""
    check_length(length, max_length)
    check_epochs(epochs)
    if name not in _BUILDERS:
        raise UsageError(f"unknown model {name}; choose from {', '.join(MODEL_NAMES)}")
    spec = _BUILDERS[name](length)
    if epochs is not None:
        spec = EchoSpec(**{**spec.__dict__, "epochs": epochs})
    return spec
