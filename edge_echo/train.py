"""Build the echo models and train them as the seed's model.fit does, fast.

model.fit pays ~25 ms of fixed cost per epoch and every seed epoch is a single
batch, so the whole optimisation runs here as one compiled loop instead: the
same Adam defaults, the same MSE, the same full batch and the same number of
steps (tests/test_train.py checks the final loss against fit's).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .specs import INPUT_NAME, EchoSpec
from .tfenv import import_tensorflow, seed_everything

# Part of the export cache key: change it whenever a change here changes the weights.
TRAINER = "compiled-loop-1"


def build_model(spec: EchoSpec, unroll: bool = False):
    import_tensorflow()
    import keras

    inputs = keras.Input(shape=spec.input_shape, name=INPUT_NAME)
    hidden = keras.layers.LSTM(
        spec.units, return_sequences=spec.return_sequences, unroll=unroll, name="lstm"
    )(inputs)
    dense = keras.layers.Dense(spec.dense_units, name="dense")
    if spec.time_distributed:
        dense = keras.layers.TimeDistributed(dense, name="time_distributed")
    outputs = dense(hidden)
    model = keras.Model(inputs, outputs, name=spec.name.replace("-", "_"))
    # An explicit name: Keras would number a second "adam" in the same process
    # "adam_1", and the name is saved into the .keras file.
    model.compile(optimizer=keras.optimizers.Adam(name="adam"), loss="mean_squared_error")
    return model


@dataclass
class TrainResult:
    model: object
    final_loss: float
    seconds: float


def train(spec: EchoSpec, seed: int) -> TrainResult:
    tf = import_tensorflow()
    seed_everything(seed)
    model = build_model(spec)
    x, y = spec.training_data()
    if len(x) > spec.batch_size:
        # Every seed configuration is one batch per epoch; several would need
        # fit's per-epoch shuffling to be reproduced as well.
        raise NotImplementedError("fast training assumes one batch per epoch")

    xs, ys = tf.constant(x), tf.constant(y)
    optimizer, loss_fn = model.optimizer, model.loss
    weights = model.trainable_variables
    if isinstance(loss_fn, str):
        import keras

        loss_fn = keras.losses.get(loss_fn)
    # Building Adam's slots up front and writing the loop as a plain while_loop
    # (autograph off) cuts tracing from ~0.6 s to ~0.2 s; the steps are the same.
    optimizer.build(weights)

    def step(i, _):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(loss_fn(ys, model(xs, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
        return i + 1, loss

    @tf.function(autograph=False)
    def run(steps):
        start = (tf.constant(0), tf.constant(0.0))
        return tf.while_loop(lambda i, _: i < steps, step, start)[1]

    start = time.perf_counter()
    loss = float(run(tf.constant(spec.epochs)))
    return TrainResult(model, loss, time.perf_counter() - start)


def train_with_fit(spec: EchoSpec, seed: int) -> TrainResult:
    """The seed notebook's own loop, kept as the reference the fast loop is tested against."""
    seed_everything(seed)
    model = build_model(spec)
    x, y = spec.training_data()
    start = time.perf_counter()
    history = model.fit(x, y, epochs=spec.epochs, batch_size=spec.batch_size, verbose=0)
    return TrainResult(model, float(history.history["loss"][-1]), time.perf_counter() - start)
