"""The C source on device targets (targets/): c@cortex-m0 ... c@cortex-m55, c@riscv32imac,
c@riscv32imafc, c@aarch64, c@wasm32, and c-step@... for each.

Each runtime builds its target's program around the file (targets.program: the C source
cross-compiled and linked into the verify harness, or the exported NAME.wasm with its loader)
and runs verify's inputs there: every sequence of a feed in one run, through NAME_predict (c@)
or NAME_reset then NAME_step per time step (c-step@). verify compares the outputs with Keras
like any other runtime's. A target takes one sequence at a time, as the device does, so these
runtimes have no batch and no host latency: bench reports their instructions (or, in Node,
their time) instead (targets.measure).
"""

from __future__ import annotations

import numpy as np

from .. import targets
from ..errors import ArtifactError
from .base import Runner


class TargetRunner(Runner):
    artifact = "c_source"
    target = "cortex-m4"
    stepped = False
    # Runs on an emulated device (or Node): one sequence at a time, no host timing.
    emulated = True

    @classmethod
    def unavailable(cls) -> str | None:
        return targets.unavailable(cls.target)

    def activate(self) -> None:
        contract = self.entry.get("c")
        if not contract:
            raise ArtifactError(f"{self.path.name}: the manifest does not describe the C API")
        why = targets.unavailable(self.target)
        if why:
            raise ArtifactError(f"{self.path.name}: {why}")
        self.contract = contract
        self.program = targets.program(self.target, self.path, contract)
        self.y_size = targets.y_size(contract)
        outputs = self.entry.get("outputs") or [{"shape": [None, self.y_size]}]
        self._out_shape = tuple(int(d) for d in outputs[0]["shape"][1:])
        if self.program.whole:
            # NAME_predict alone, the inputs packed per sequence as the harness reads them.
            self.input_dtypes = [np.int32 if i["dtype"] == "int32" else np.float32
                                 for i in contract["inputs"]]
            self.file_inputs = [[1, *i["shape"]] for i in contract["inputs"]]
            return
        self.steps, self.features = int(contract["steps"]), int(contract["features"])

    def _infer(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        if self.program.whole:
            xs = targets.pack(self.contract, arrays)
            ys, figures = self.program.run(xs, step=False, y_size=self.y_size)
            if np.any(figures["status"] != 0):
                raise ArtifactError(f"{self.path.name}: a token id is outside the vocabulary "
                                    f"({self.contract['prefix']}_predict returned -1)")
            return dict(zip(self.output_names, [ys.reshape(len(ys), *self._out_shape)], strict=True))
        (x,) = arrays
        per = self.steps * self.features
        if x.size % per or x.size == 0:
            raise ArtifactError(f"{self.path.name}: takes {self.steps} x {self.features} values a "
                                f"sequence, got {x.size}")
        ys, _ = self.program.run(x.reshape(-1, per), step=self.stepped, y_size=self.y_size)
        return dict(zip(self.output_names, [ys.reshape(len(ys), *self._out_shape)], strict=True))


def _runner(name: str, stepped: bool) -> type[TargetRunner]:
    kind = "c-step" if stepped else "c"
    cls_name = "".join(p.capitalize() for p in name.replace("-", " ").split()) + \
        ("StepRunner" if stepped else "Runner")
    return type(cls_name, (TargetRunner,), {
        "runtime": f"{kind}@{name}", "target": name, "stepped": stepped,
        "artifact": targets.TARGETS[name].artifact, "__module__": __name__})


TARGET_RUNNERS: tuple[type[TargetRunner], ...] = tuple(
    _runner(name, stepped) for stepped in (False, True) for name in targets.TARGET_NAMES)
