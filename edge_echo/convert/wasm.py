"""WebAssembly forms of the C source: NAME.wasm (the C source compiled by clang for wasm32,
freestanding: no libc, no Emscripten) and NAME.mjs, its loader (predict, and reset and step
where the C source has them, on Float32Arrays). Written with --c-source, or asked for with
--forms wasm. The build is targets/wasm.py's; c@wasm32 and c-step@wasm32 run these files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ArtifactError
from ..forms import Form, Subject, Unavailable
from ..targets import wasm
from . import csource
from .csource.generate import _generated


def _c_contract(subject: Subject) -> dict:
    return csource.contract(subject, Path(f"{subject.name}.c"))["c"]


def to_wasm(subject: Subject) -> bytes:
    _, header, source = _generated(subject)
    why = wasm.unavailable_build()
    if why:
        raise Unavailable(why)
    return wasm.build_module(source, header, _c_contract(subject), subject.name)


def to_loader(subject: Subject) -> bytes:
    _generated(subject)  # a model with no C source has no loader either (its reason)
    if wasm.unavailable_build():
        raise Unavailable(wasm.unavailable_build())
    return wasm.loader(_c_contract(subject), subject.name).encode()


def contract(subject: Subject, path: Path) -> dict:
    """The C contract the module keeps (its buffers and calls are the C source's), and how a
    JavaScript app calls it."""
    from ..runners import RUNNERS

    c = _c_contract(subject)
    whole = c.get("mode") == "whole_sequence"
    labels = [rt for rt, cls in RUNNERS.items() if cls.artifact == "wasm"]
    not_on = {rt: c["no_step"] for rt in labels if rt.startswith("c-step")} if whole else {}
    api = (["load(source?) -> {predict(...inputs) -> Float32Array}"] if whole else
           ["load(source?) -> {predict(x: Float32Array) -> Float32Array, reset(), "
            "step(x_t: Float32Array) -> Float32Array}"])
    return {**subject.interface.io(), "runs_on": [rt for rt in labels if rt not in not_on],
            "not_on": not_on, "c": c,
            "wasm": {"loader": f"{subject.name}.mjs", "api": api,
                     "exports": ["memory", "x", "y", "predict"] + ([] if whole else ["reset", "step"]),
                     "imports": [], "stack_bytes": wasm.stack_bytes(c),
                     "compiler": wasm.compiler(), "flags": " ".join([*wasm.FLAGS, *wasm.LINK])}}


def measure(subject: Subject, path: Path, art: dict) -> dict:
    """Bytes of the module and loader, and a run of the loader's predict in Node on the first
    reference sequence (device.json; bench times it: a time does not repeat exactly)."""
    from .. import targets

    c = art["c"]
    if c.get("mode") == "whole_sequence":
        calibration = subject.calibration
        if not isinstance(calibration, dict):
            calibration = {subject.interface.input_name: calibration}
        x = targets.pack(c, [np.asarray(calibration[i["name"]][:1]) for i in c["inputs"]])
    else:
        size = c["steps"] * c["features"]
        ref = subject.reference_x
        x = (np.asarray(ref, np.float32).reshape(-1)[:size]
             if isinstance(ref, np.ndarray) and ref.size >= size
             else np.random.default_rng(0).uniform(0, 1, size).astype(np.float32))
    try:
        return targets.measure(path, c, x, artifact="wasm")
    except ArtifactError as exc:
        return {"wasm": {"measured": f"not measured: {exc}"}}


FORMS = (
    Form("wasm", ".wasm", "wasm", to_wasm, (), contract=contract, optional=True, measure=measure),
    Form("wasm_loader", ".mjs", "js", to_loader, (), optional=True),
)
