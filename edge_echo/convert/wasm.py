"""WebAssembly forms of the C source: NAME.wasm (the C source compiled by clang for wasm32,
freestanding: no libc, no Emscripten) and NAME.mjs, its loader (predict, and reset and step
where the C source has them, on Float32Arrays). Written with --c-source, or asked for with
--forms wasm. The build is targets/wasm.py's; c@wasm32 and c-step@wasm32 run these files.
"""

from __future__ import annotations

from pathlib import Path

from ..forms import Form, Subject, Unavailable
from ..targets import wasm
from . import csource
from .csource.figures import device_figures
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
    """Bytes of the module and loader, and a run of the loader's predict in Node on the C
    source's measuring input (device.json; bench times it: a time does not repeat exactly)."""
    return device_figures(subject, path, art["c"], artifact="wasm")


FORMS = (
    Form("wasm", ".wasm", "wasm", to_wasm, (), contract=contract, optional=True, measure=measure),
    Form("wasm_loader", ".mjs", "js", to_loader, (), optional=True),
)
