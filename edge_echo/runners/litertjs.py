"""LiteRT.js (npm @litertjs/core) on its WebAssembly CPU backend (XNNPack), in headless
Chromium: the .tflite files as a web page runs them.

LiteRT.js compiles a model for the shapes it declares and cannot resize an input, so it runs
the web files (NAME.web.tflite, convert/tflite_web.py: the dynamic batch fixed at 1), one
sequence a call. It has no reset of variable tensors either: a stateful file (the micro forms'
fused LSTM), given to it alone, is refused in one line.
"""

from __future__ import annotations

from ..errors import ArtifactError
from .base import SteppedRunner
from .javascript import JsRunner


class LiteRTJsRunner(JsRunner):
    runtime = "litertjs"
    artifact = "tflite_web"
    twin = "litert"
    host_kind, engine, packages = "browser", "litertjs", ("@litertjs/core",)
    where = "Chromium"

    def activate(self) -> None:
        from .litert import has_variable_tensors

        if has_variable_tensors(self.path):
            raise ArtifactError(f"{self.path.name}: LiteRT.js cannot reset its variable tensors "
                                "between sequences (a stateful file)")
        super().activate()
        dynamic = [(name, shape) for name, shape in zip(self.input_names, self.file_inputs, strict=True)
                   if None in shape]
        if dynamic:
            name, shape = dynamic[0]
            shown = ", ".join("-1" if d is None else str(d) for d in shape)
            self.deactivate()
            raise ArtifactError(f"{self.path.name}: LiteRT.js cannot resize an input, and input "
                                f"{name} is [{shown}]; run the file's .web.tflite (its batch "
                                "fixed at 1), which edge-echo export writes beside it")


class LiteRTJsStepRunner(SteppedRunner):
    runtime = "litertjs-step"
    artifact = "tflite_web_step"
    inner = LiteRTJsRunner
