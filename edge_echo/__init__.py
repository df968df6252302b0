"""edge-echo: export Keras LSTM sequence models to TFLite and ONNX and prove they behave the same.

The public API, importable without loading TensorFlow:

    from edge_echo import export, verify
    export("exported", ["many-to-one"])
    report = verify("exported", keras=False)
    timings = bench("exported", runtimes=("onnxruntime", "litert"))
    convert("my_model.keras", "my_export")
"""

from __future__ import annotations


def export(out, models=None, **options):
    from .export import export as _export
    from .specs import parse_model_names

    return _export(out, parse_model_names(models), **options)


def verify(directory="exported", **options):
    from .verify import verify as _verify

    return _verify(directory, **options)


def convert(model, out="converted", **options):
    from .usermodel import convert as _convert

    return _convert(model, out, **options)


def bench(directory="exported", **options):
    from .bench import bench as _bench

    return _bench(directory, **options)


__all__ = ["bench", "convert", "export", "verify"]
