"""The C source on emulated Cortex-M cores: c@cortex-m0 ... c@cortex-m55, and c-step@... .

Each runtime cross-compiles NAME.c for its core (arm-none-eabi-gcc, the core's -mcpu, FPU
and float ABI), links it into edge-echo's verify firmware for the matching qemu-system-arm
board (cortexm.py), and runs verify's inputs there: every sequence of a feed in one run of
the emulator, through NAME_predict (c@) or NAME_reset then NAME_step per time step
(c-step@). verify compares the outputs with Keras like any other runtime's. The firmware
takes one sequence at a time, as the device does, so these runtimes have no batch and no
host latency: bench reports their instructions instead (cortexm.measure).
"""

from __future__ import annotations

import numpy as np

from .. import cortexm
from ..errors import ArtifactError
from .base import Runner


class CortexMRunner(Runner):
    artifact = "c_source"
    core = "cortex-m4"
    stepped = False
    # Runs on an emulated device: one sequence at a time, no host timing.
    emulated = True
    # A whole-sequence model's C contract (NAME_predict alone), or None.
    whole: dict | None = None

    @classmethod
    def unavailable(cls) -> str | None:
        return cortexm.unavailable()

    def activate(self) -> None:
        contract = self.entry.get("c")
        if not contract:
            raise ArtifactError(f"{self.path.name}: the manifest does not describe the C API")
        why = cortexm.unavailable()
        if why:
            raise ArtifactError(f"{self.path.name}: {why}")
        if contract.get("mode") == "whole_sequence":
            # NAME_predict alone, the inputs packed per sequence as the harness reads them.
            self.whole = contract
            self.firmware = cortexm.firmware(self.core, self.path, contract["prefix"],
                                             cortexm.whole_call(contract))
            self.y_size = int(contract["y_size"])
            outputs = self.entry.get("outputs") or [{"shape": [None, self.y_size]}]
            self._out_shape = tuple(int(d) for d in outputs[0]["shape"][1:])
            self.input_dtypes = [np.int32 if i["dtype"] == "int32" else np.float32
                                 for i in contract["inputs"]]
            self.file_inputs = [[1, *i["shape"]] for i in contract["inputs"]]
            return
        self.firmware = cortexm.firmware(self.core, self.path, contract["prefix"])
        self.steps, self.features = int(contract["steps"]), int(contract["features"])
        every = contract["sequence_output"] == "every_step"
        self.y_size = int(contract["outputs"]) * (self.steps if every else 1)
        outputs = self.entry.get("outputs") or [{"shape": [None, self.y_size]}]
        self._out_shape = tuple(int(d) for d in outputs[0]["shape"][1:])

    def _infer(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        if self.whole:
            xs = cortexm.pack(self.whole, arrays)
            ys, figures = self.firmware.run(xs, step=False, y_size=self.y_size)
            if np.any(figures["status"] != 0):
                raise ArtifactError(f"{self.path.name}: a token id is outside the vocabulary "
                                    f"({self.whole['prefix']}_predict returned -1)")
            return dict(zip(self.output_names, [ys.reshape(len(ys), *self._out_shape)], strict=True))
        (x,) = arrays
        per = self.steps * self.features
        if x.size % per or x.size == 0:
            raise ArtifactError(f"{self.path.name}: takes {self.steps} x {self.features} values a "
                                f"sequence, got {x.size}")
        ys, _ = self.firmware.run(x.reshape(-1, per), step=self.stepped, y_size=self.y_size)
        return dict(zip(self.output_names, [ys.reshape(len(ys), *self._out_shape)], strict=True))


def _runner(core: str, stepped: bool) -> type[CortexMRunner]:
    kind = "c-step" if stepped else "c"
    name = "CortexM" + core.split("-")[1].upper() + ("StepRunner" if stepped else "Runner")
    return type(name, (CortexMRunner,), {"runtime": f"{kind}@{core}", "core": core,
                                         "stepped": stepped, "__module__": __name__})


CORTEX_M_RUNNERS: tuple[type[CortexMRunner], ...] = tuple(
    _runner(core, stepped) for stepped in (False, True) for core in cortexm.CORE_NAMES)
