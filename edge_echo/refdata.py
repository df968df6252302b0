"""Reference data (inputs and the Keras outputs on them) stored beside the models.

It lets verify run where TensorFlow is absent. Written as an .npz whose zip
entries carry a fixed timestamp, so the same export gives the same bytes;
read with allow_pickle=False, so an untrusted file cannot run code.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from .errors import ArtifactError

SAMPLES = 256
# Keys of the archive: the seed input, the random inputs, and Keras on both.
# A model with several outputs has random_y, random_y.1, ... in output order.
# The seed pair is the echo sequence; a user's model (convert) has none.
SEED_X, SEED_Y, RANDOM_X, RANDOM_Y = "seed_x", "seed_y", "random_x", "random_y"


def output_key(prefix: str, index: int) -> str:
    return prefix if index == 0 else f"{prefix}.{index}"


def input_key(prefix: str, index: int) -> str:
    """A model with several inputs has random_x, random_x.1, ... in the manifest's input order."""
    return output_key(prefix, index)


def inputs(arrays: dict[str, np.ndarray], prefix: str, names: list[str]) -> dict[str, np.ndarray]:
    """The stored inputs under prefix (RANDOM_X), keyed by input name."""
    return {name: arrays[input_key(prefix, i)] for i, name in enumerate(names)}


def outputs(arrays: dict[str, np.ndarray], prefix: str, names: list[str]) -> dict[str, np.ndarray]:
    """The stored outputs under prefix (SEED_Y or RANDOM_Y), keyed by output name."""
    return {name: arrays[output_key(prefix, i)] for i, name in enumerate(names)}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def random_inputs(input_shape: tuple[int, ...], samples: int, seed: int,
                  low: float = 0.0, high: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(samples, *input_shape)).astype(np.float32)


def draw(inputs: list[dict], samples: int, seed: int, spread: dict) -> dict[str, np.ndarray]:
    """Fresh inputs like the stored ones: per input (manifest entries), uniform floats in its
    range, or integer token ids in [low, high) of the Embedding the input feeds."""
    per_input = spread.get("inputs", {})
    low, high = float(spread.get("low", 0.0)), float(spread.get("high", 1.0))
    feed = {}
    for k, entry in enumerate(inputs):
        shape = tuple(entry["shape"][1:])
        own = per_input.get(entry["name"], {})
        if own.get("distribution") == "integers":
            rng = np.random.default_rng(seed + k)
            feed[entry["name"]] = rng.integers(int(own["low"]), int(own["high"]),
                                               size=(samples, *shape)).astype(entry["dtype"])
        else:
            feed[entry["name"]] = random_inputs(shape, samples, seed + k,
                                                float(own.get("low", low)),
                                                float(own.get("high", high)))
    return feed


def save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def load(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as exc:
        raise ArtifactError(f"{path.name}: unreadable reference data ({exc})") from None
    missing = {RANDOM_X, RANDOM_Y} - set(arrays)
    if (SEED_X in arrays) != (SEED_Y in arrays):
        missing.add(SEED_Y if SEED_X in arrays else SEED_X)
    if missing:
        raise ArtifactError(f"{path.name}: reference data lacks {', '.join(sorted(missing))}")
    return arrays
