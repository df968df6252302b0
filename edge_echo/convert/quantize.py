"""Quantized variants of the TFLite and ONNX files, each with a tolerance derived from its precision.

Variants (`--quantize`, each optionally qualified by format, as `onnx:dynamic`):
- dynamic: int8 weights, activations quantized at run time. ONNX Runtime's
  quantize_dynamic maps the LSTM node to DynamicQuantizeLSTM (its documented
  choice for RNNs). The TFLite converter quantizes only weight tensors of
  1024 elements or more, so for small LSTMs it writes the float model again:
  that variant is reported as not produced rather than written as a copy.
- float16: weights stored as float16 (TFLite), or the graph in float16 with
  float32 inputs and outputs (ONNX, onnxruntime.transformers.float16).
- int8: full integer. TFLite: int8 weights and activations, float32 input and
  output (the converter adds QUANTIZE/DEQUANTIZE at the edges), calibrated on
  the training sequence and random sequences in [0, 1]. ONNX: static QDQ with
  the same calibration data (ONNX Runtime keeps the LSTM itself in float).

Tolerance rule, per variant and model, never tuned to the measured error:
atol = 8 quantization steps at the reference output's scale (int8: range/255;
float16: 2**-11 * max|y|), rtol = 0. Eight steps leave the last three bits
of an 8-bit result, or of float16's mantissa, to the rounding that every
recurrent step compounds. Outputs outside the calibrated range saturate, so
the int8 calibration covers the input range (see CALIBRATION_SAMPLES).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UsageError, first_line
from ..specs import EchoSpec
from .onnx_simplify import toposort

VARIANTS = ("dynamic", "float16", "int8")
FORMATS = ("tflite", "onnx", "c")
# The integer C source (NAME.int8.c, convert/csource/integer.py) is int8 alone, and written only
# where the C source is asked for (--c-source).
ONLY = {"c": ("int8",)}
STEPS = 8
# With 200 random sequences the many-to-many output range calibrated to a max of
# 0.920 while the reference reached 0.953, and int8 outputs saturated there
# (an error of 9 steps); 2000 sequences plus the constant ones at the input
# bounds cover the range the outputs take.
CALIBRATION_SAMPLES = 2000
# ONNX weights in 7 bits (ONNX Runtime's reduce_range). On an x86-64 CPU with AVX2 or AVX-512
# but no VNNI, ONNX Runtime multiplies uint8 activations by int8 weights with VPMADDUBSW,
# which saturates the sum of two products at 16 bits; with 8-bit weights, many-to-one's
# dynamic file printed 0.66 for 0.97 on an AMD EPYC (AVX2) and was right on a VNNI CPU.
# Seven-bit weights cannot saturate it (2 x 255 x 64 < 2^15), on any CPU: on that EPYC the
# same file's worst error fell from 0.309 to 0.0053 (its tolerance: 0.031).
REDUCE_RANGE = True


METHODS = {
    ("tflite", "dynamic"): "TFLiteConverter Optimize.DEFAULT, no representative data",
    ("tflite", "float16"): "TFLiteConverter Optimize.DEFAULT, supported_types float16",
    ("tflite", "int8"): ("TFLiteConverter TFLITE_BUILTINS_INT8 with representative data; int8 "
                         "weights and activations, float32 input and output"),
    ("onnx", "dynamic"): "onnxruntime.quantization.quantize_dynamic, QInt8 weights in 7 bits "
                         "(reduce_range)",
    ("onnx", "float16"): ("onnxruntime.transformers.float16, float32 input and output kept, "
                          "Transpose kept in float32"),
    ("onnx", "int8"): ("onnxruntime.quantization.quantize_static, QDQ, QInt8 activations and "
                       "weights, weights in 7 bits (reduce_range)"),
}


class VariantUnavailable(Exception):
    """The converter cannot produce this variant; the message is its reason, in one line."""


def parse(values: list[str] | None) -> list[tuple[str, str]]:
    """'int8' -> every format that has it (tflite, onnx, c); 'onnx:dynamic' -> one. Returns
    (format, variant) pairs in order."""
    wanted: list[tuple[str, str]] = []
    for item in values or []:
        for token in filter(None, (t.strip() for t in item.split(","))):
            fmt, _, variant = token.rpartition(":")
            formats = [fmt] if fmt else [f for f in FORMATS if variant in ONLY.get(f, VARIANTS)]
            if variant not in VARIANTS or any(f not in FORMATS for f in formats):
                raise UsageError(f"--quantize {token!r}: choose from {', '.join(VARIANTS)}, "
                                 f"optionally as FORMAT:VARIANT with FORMAT {', '.join(FORMATS)}")
            if fmt and variant not in ONLY.get(fmt, VARIANTS):
                raise UsageError(f"--quantize {token!r}: the {fmt} format has "
                                 f"{', '.join(ONLY[fmt])} alone")
            wanted += [(f, variant) for f in formats if (f, variant) not in wanted]
    return wanted


def calibration_inputs(spec: EchoSpec, seed: int) -> np.ndarray:
    """The training sequence plus random sequences in the input range (not the reference ones)."""
    from ..refdata import random_inputs

    train_x, _ = spec.training_data()
    bounds = np.stack([np.zeros(spec.input_shape, np.float32), np.ones(spec.input_shape, np.float32)])
    return np.concatenate([train_x, bounds, random_inputs(spec.input_shape, CALIBRATION_SAMPLES,
                                                          seed + 1_000_003)])


def calibration_count(calibration) -> int:
    """How many samples calibration holds (one array, or one array per input name)."""
    return len(next(iter(calibration.values())) if isinstance(calibration, dict) else calibration)


def calibration_feeds(calibration, input_name: str) -> list[dict[str, np.ndarray]]:
    """One feed per calibration sample: calibration is the one input's samples, or (several
    inputs, token ids) one array per input name, in the model's input order."""
    arrays = calibration if isinstance(calibration, dict) else {input_name: calibration}
    return [{name: a[i:i + 1] for name, a in arrays.items()}
            for i in range(calibration_count(calibration))]


def tflite_variant(frozen, variant: str, calibration, input_name: str) -> bytes:
    """frozen: the model's inference as a frozen concrete function (convert/tflite.py)."""
    from ..tfenv import import_tensorflow
    from .graph_tflite import FrozenGraph
    from .tflite import converter_for

    if variant == "int8" and isinstance(frozen, FrozenGraph):
        # Measured: TFLite 2.21's calibrator segfaults on a graph's builtin WHILE loop.
        raise VariantUnavailable("the TFLite int8 calibrator crashes on a serving graph's "
                                 "recurrent loop (builtin WHILE); convert the Keras model for "
                                 "an int8 .tflite, or use the ONNX int8 variant")
    tf = import_tensorflow()
    converter = converter_for(frozen)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        feeds = calibration_feeds(calibration, input_name)
        converter.representative_dataset = lambda: (list(feed.values()) for feed in feeds)
    try:
        data = converter.convert()
    except Exception as exc:
        raise VariantUnavailable(first_line(exc)) from None
    if variant == "dynamic" and not _has_int8_weights(data):
        raise VariantUnavailable(
            "the TFLite converter quantizes only weight tensors of >= 1024 elements and none "
            "here is that large, so the file would be the float32 model again")
    return data


def onnx_variant(float_onnx: Path, variant: str, calibration, input_name: str) -> bytes:
    import onnx

    try:
        if variant == "float16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            # Transpose stays float32: ONNX Runtime 1.32 segfaults optimizing a float16
            # Transpose next to the LSTM, and moving data loses no precision.
            model = convert_float_to_float16(onnx.load(str(float_onnx)), keep_io_types=True,
                                             op_block_list=["Transpose"])
            # It appends the input and output Casts after the nodes that use them;
            # ONNX Runtime 1.32 segfaults loading such an unsorted graph.
            toposort(model.graph)  # raises ValueError on a cycle
            return _checked(model)
        import tempfile

        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_dynamic,
            quantize_static,
        )

        with tempfile.TemporaryDirectory(prefix="edge-echo-quant-") as tmp:
            out = Path(tmp) / "quantized.onnx"
            if variant == "dynamic":
                quantize_dynamic(str(float_onnx), str(out), weight_type=QuantType.QInt8,
                                 reduce_range=REDUCE_RANGE)
            else:
                class Reader(CalibrationDataReader):
                    def __init__(self):
                        self.feeds = iter(calibration_feeds(calibration, input_name))

                    def get_next(self):
                        return next(self.feeds, None)

                quantize_static(str(float_onnx), str(out), Reader(), quant_format=QuantFormat.QDQ,
                                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                                reduce_range=REDUCE_RANGE)
            model = onnx.load(str(out))
    except VariantUnavailable:
        raise
    except Exception as exc:
        raise VariantUnavailable(first_line(exc)) from None
    model.graph.doc_string = ""
    return _checked(model)


def _checked(model) -> bytes:
    """Refuse to write a graph the ONNX checker rejects: a native runtime may crash on it."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise VariantUnavailable(f"the converter wrote an invalid graph ({first_line(exc)})") from None
    return model.SerializeToString(deterministic=True)




def tolerance(variant: str, reference_outputs: np.ndarray, probability: bool = False) -> dict:
    """atol of a quantized file. probability: every output is a softmax or sigmoid vector, whose
    int8 steps are 1/255 of [0, 1] whatever range the reference happens to reach (an untrained
    57-class softmax sits near 1/57, and its range would give steps of 1e-4)."""
    y = np.asarray(reference_outputs, dtype=np.float64)
    if variant == "float16":
        step = 2.0 ** -11 * float(np.abs(y).max())
        rule = f"{STEPS} float16 steps at max|y| = {np.abs(y).max():.4g}"
    elif probability:
        step = 1 / 255
        rule = (f"{STEPS} int8 steps of 1/255 on the probability scale [0, 1]: the outputs are "
                "probability vectors (softmax or sigmoid), judged on that scale and by their top "
                "class, not by the range the reference reaches")
    else:
        lo, hi = float(y.min()), float(y.max())
        step = (hi - lo) / 255
        rule = f"{STEPS} int8 steps of the reference output range [{lo:.4g}, {hi:.4g}]"
    return {"atol": STEPS * step, "rtol": 0.0, "rule": rule}


def _has_int8_weights(data: bytes) -> bool:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)
    return any(sub.Tensors(i).Type() == schema.TensorType.INT8 for i in range(sub.TensorsLength()))
