"""One runner per runtime behind one interface (base.Runner), after Polygraphy's runners.

One module per runtime, as Polygraphy's backend/<name>/runner.py: adding a
runtime is adding one module and its classes to RUNNERS below.
"""

from __future__ import annotations

from .base import Runner, SteppedRunner
from .c import CRunner, CStepRunner
from .keras import KerasPredictRunner, KerasRunner
from .litert import LiteRTMicroRunner, LiteRTMicroStepRunner, LiteRTRunner, LiteRTStepRunner
from .litert_compiled import LiteRTCompiledRunner, LiteRTCompiledStepRunner
from .litertjs import LiteRTJsRunner, LiteRTJsStepRunner
from .onnxruntime import OnnxRunner, OnnxStepRunner
from .onnxruntime_node import OnnxNodeRunner, OnnxNodeStepRunner, OrtNodeRunner, OrtNodeStepRunner
from .onnxruntime_ort import OrtRunner, OrtStepRunner
from .onnxruntime_web import OnnxWebRunner, OnnxWebStepRunner, OrtWebRunner, OrtWebStepRunner
from .target import TARGET_RUNNERS, TargetRunner
from .tensorflow import TensorFlowRunner
from .tflm import TFLMRunner, TFLMStepRunner


def targets(artifacts: dict, runners: dict[str, type[Runner]]) -> list[tuple[str, type[Runner], dict]]:
    """(label, runner class, artifact) for every runtime whose file this export has, then every
    quantized variant on the runtimes of the form it quantizes, labelled RUNTIME:VARIANT
    (e.g. litert:int8, tflm:int8)."""
    # A file its form's runtimes cannot all run lists those that can (runs_on): a whole-sequence
    # C source has no NAME_step for c-step.
    found = [(rt, cls, artifacts[cls.artifact]) for rt, cls in runners.items()
             if cls.artifact in artifacts and rt in artifacts[cls.artifact].get("runs_on", [rt])]
    for art in artifacts.values():
        if art.get("variant"):
            # Manifests before the micro forms name no base: a variant then quantizes the
            # full file of its format.
            base = art.get("base") or art["format"]
            # A file proven on only some of its form's runtimes lists them (runs_on).
            found.extend((f"{rt}:{art['variant']}", cls, art) for rt, cls in runners.items()
                         if cls.artifact == base and rt in art.get("runs_on", [rt]))
    return found


def python_twin(label: str) -> str:
    """The Python runtime's label for what a JavaScript runtime's label runs (the same file, or
    for a .web.tflite the .tflite it is made from): onnxruntime-web-ort-step ->
    onnxruntime-ort-step, litertjs:int8 -> litert:int8."""
    base, _, variant = label.partition(":")
    step = base.endswith("-step")
    twin = RUNNERS[base.removesuffix("-step")].twin + ("-step" if step else "")
    return f"{twin}:{variant}" if variant else twin


def labels_for(kind: str, variant: str | None = None) -> list[str]:
    """The runtime labels verify gives the artifact kind (and variant): the keys of its tolerances."""
    return [f"{rt}:{variant}" if variant else rt for rt, cls in RUNNERS.items()
            if cls.artifact == kind]


# The JavaScript runtimes (in Node, or in headless Chromium), full files and step files.
JS_RUNNERS = (OnnxNodeRunner, OrtNodeRunner, OnnxWebRunner, OrtWebRunner, LiteRTJsRunner)
JS_STEP_RUNNERS = (OnnxNodeStepRunner, OrtNodeStepRunner, OnnxWebStepRunner, OrtWebStepRunner,
                   LiteRTJsStepRunner)
# The runtimes verify compares.
RUNNERS: dict[str, type[Runner]] = {
    cls.runtime: cls
    for cls in (KerasRunner, TensorFlowRunner, OnnxRunner, OrtRunner, LiteRTRunner, LiteRTCompiledRunner,
                OnnxStepRunner, OrtStepRunner, LiteRTStepRunner, LiteRTCompiledStepRunner,
                TFLMRunner, LiteRTMicroRunner, TFLMStepRunner, LiteRTMicroStepRunner, CRunner,
                CStepRunner, *JS_RUNNERS, *JS_STEP_RUNNERS, *TARGET_RUNNERS)
}
RUNTIMES = tuple(RUNNERS)
# bench times the full models, with keras-predict as the baseline.
BENCH_RUNNERS: dict[str, type[Runner]] = {
    cls.runtime: cls for cls in (KerasPredictRunner, KerasRunner, TensorFlowRunner, OnnxRunner, OrtRunner,
                                 LiteRTRunner, LiteRTCompiledRunner, TFLMRunner, LiteRTMicroRunner,
                                 CRunner, *JS_RUNNERS)
}

__all__ = ["BENCH_RUNNERS", "LiteRTRunner", "OnnxRunner", "OrtRunner", "RUNNERS",
           "RUNTIMES", "Runner", "SteppedRunner", "TargetRunner", "labels_for", "python_twin",
           "targets"]
