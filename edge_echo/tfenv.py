"""The one place TensorFlow is imported, quietly and deterministically.

Only export-time code and the Keras runner call this; verify --no-keras and
the runtime paths never do, so they run where TensorFlow is not installed.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced():
    """Hide what native libraries print straight to fd 2 (absl and XNNPACK banners).

    Python exceptions still propagate; only the C-level chatter is dropped.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def quiet_converters():
    """Silence what converters print beside their results: warnings, root-logger advice, C++ logs."""
    import logging
    import warnings

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with native_stderr_silenced():
                yield
    finally:
        logging.disable(previous)


def tensorflow_available() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def require_tensorflow(what: str) -> None:
    """A clear line instead of a ModuleNotFoundError on the runtime-only install."""
    if not tensorflow_available():
        from .errors import UsageError

        raise UsageError(f"{what} needs TensorFlow, which this install lacks; "
                         "install edge-echo[export]")


def import_tensorflow():
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with native_stderr_silenced():
        import tensorflow as tf
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    tf.get_logger().setLevel("ERROR")
    return tf


def seed_everything(seed: int) -> None:
    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def configure_threads(threads: int) -> dict:
    """Apply the thread count to TF's pools; possible only before TF runs its first op."""
    tf = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # already initialised in this process: report what is in force
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }
