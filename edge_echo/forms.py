"""The deployable forms of a trained model, registered once and written by one pipeline.

A *form* is one file kind (the unrolled .tflite, the .onnx, a step model, a
micro model): one converter (subject -> bytes, or Unavailable with a
one-line reason why this model has no such form), one describe step (read
back from the file) and its contract (extra manifest fields a device app
must follow). `edge-echo export` (the echo models, trained here) and
`edge-echo convert` (a user's model) both call write_forms, so a form added
here reaches both, with the same checks: no custom ops, and a load-and-run
probe in a child process before the file is kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import manifest
from .errors import check_interrupted, first_line

Progress = Callable[[str, str], None]


class Unavailable(Exception):
    """This model has no such form; the message says why, in one line. Not a failure."""


@dataclass(frozen=True)
class Input:
    """One input of a model, one sample: its name, shape (time steps fixed) and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    # The model's own shape, None where it leaves a dimension open (the ONNX file keeps it open).
    model_shape: tuple[int | None, ...] | None = None
    # Token ids: the input_dim of the Embedding the input feeds; ids are drawn from [0, this).
    vocabulary: int | None = None

    @property
    def integer(self) -> bool:
        return self.dtype.startswith("int")

    def io(self) -> dict:
        return {"name": self.name, "shape": [None, *self.shape], "dtype": self.dtype,
                **({"vocabulary": self.vocabulary} if self.vocabulary else {})}


@dataclass
class Interface:
    """What a model takes and returns, one sample, time steps fixed: the one source of shapes."""

    timesteps: int
    # The time steps the model itself fixes; None where it leaves them open.
    model_timesteps: int | None
    inputs: list[Input]
    outputs: list[tuple[str, tuple[int, ...]]]
    # Output name -> "softmax" or "sigmoid" where the output is a probability vector (the layer
    # that makes it ends in that activation): int8 is judged on the probability scale there.
    probability: dict[str, str] = field(default_factory=dict)

    def io(self) -> dict:
        return {
            "inputs": [i.io() for i in self.inputs],
            "outputs": [{"name": n, "shape": [None, *s], "dtype": "float32",
                         **({"probability": self.probability[n]} if n in self.probability else {})}
                        for n, s in self.outputs],
        }

    @property
    def probabilities(self) -> bool:
        """Every output is a probability vector."""
        return bool(self.outputs) and all(n in self.probability for n, _ in self.outputs)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The first (for most models the only) input's shape."""
        return self.inputs[0].shape

    @property
    def input_name(self) -> str:
        return self.inputs[0].name

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def plain(self) -> bool:
        """One float input: what the micro, C and int8 forms take."""
        return len(self.inputs) == 1 and not self.inputs[0].integer

    @property
    def output_names(self) -> list[str]:
        return [n for n, _ in self.outputs]


class Deferred:
    """A Keras model loaded when a converter first asks for it: an export whose files are all
    reused never loads one (nor TensorFlow)."""

    def __init__(self, load: Callable[[], object]):
        self.load = load


@dataclass
class Subject:
    """A trained Keras model and its interface: what every converter takes."""

    name: str
    # The Keras model, or Deferred: read it as .model.
    source: object
    interface: Interface
    # Inputs for int8 calibration, in the range the model is used on: the one input's samples,
    # or one array per input name (several inputs, token ids).
    calibration: np.ndarray | dict
    # Reference outputs (concatenated, raveled): the scale of the quantized tolerances.
    reference_y: np.ndarray
    # The reference inputs those outputs are Keras's answer to (for checks at export).
    reference_x: np.ndarray | None = None
    # The echo models' spec; None for a user's model.
    spec: object = None
    # Intermediate results converters share (e.g. the frozen TFLite function).
    cache: dict = field(default_factory=dict)
    # Everything that determines the subject (the model file's sha256, the spec or the options
    # that drew its reference data): with a form's kind and the tool versions, what a file made
    # from it is made from. None: nothing is reused.
    basis: dict | None = None

    @property
    def graph_only(self) -> bool:
        """The subject is a serving graph with no Keras layers (readers/graph.py)."""
        return not isinstance(self.source, Deferred) and getattr(self.source, "is_graph", False)

    @property
    def model(self):
        if isinstance(self.source, Deferred):
            self.source = self.source.load()
        return self.source


NEEDS_LAYERS = ("made from the Keras layers, and the source is a SavedModel with no Keras "
                "config (a serving graph); convert the Keras model (.keras, .h5) for this form")


@dataclass
class Reuse:
    """The previous export's entry for this model, whose files may be reused where what made
    them is unchanged (reuse_keys: the manifest's record of that, per form)."""

    directory: Path
    entry: dict
    # The model's name in that export (its device.json is keyed by it).
    name: str

    def _same(self, kind: str, key: str | None) -> bool:
        return key is not None and self.entry.get("reuse_keys", {}).get(kind) == key

    def artifact(self, kind: str, key: str | None, file: str) -> dict | None:
        """The previous artifact of this kind, if made from the same inputs, named file as this
        export would name it, and still intact."""
        art = self.entry.get("artifacts", {}).get(kind) if self._same(kind, key) else None
        if not isinstance(art, dict) or art.get("file") != file:
            return None
        try:
            path = manifest.artifact_path(self.directory, art)
        except Exception:
            return None
        if not path.is_file() or manifest.sha256_file(path) != art.get("sha256"):
            return None
        return art

    def measured(self, kind: str, sha256: str) -> dict | None:
        """What the previous export measured of this file (device.json), if of the same bytes."""
        from .results import load_device

        found = load_device(self.directory).get(self.name, {}).get(kind)
        return found if isinstance(found, dict) and found.get("sha256") == sha256 else None

    def not_written(self, kind: str, key: str | None) -> str | None:
        """Why the previous export had no file of this kind, if asked with the same inputs."""
        return self.entry.get("not_written", {}).get(kind) if self._same(kind, key) else None

    def copy(self, art: dict, out: Path) -> Path:
        target = out / art["file"]
        shutil.copyfile(manifest.artifact_path(self.directory, art), target)
        return target


def reuse_key(subject: Subject, kind: str, tools: dict) -> str | None:
    """sha256 of what a file of this kind is made from: the subject's basis, the form, and every
    tool version but the Python one (3.11 and 3.13 write the same bytes)."""
    if subject.basis is None:
        return None
    basis = {"subject": subject.basis, "form": kind,
             "tools": {k: v for k, v in tools.items() if k != "python"}}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def twin_key(subject: Subject, kind: str, tools: dict, source: dict) -> str | None:
    """The reuse key of a file made from another form's file (an .ort, a .web.tflite): its
    own, and the bytes of the file it is made from."""
    key = reuse_key(subject, kind, tools)
    return key and f"{key}:{source['sha256']}"


def twin_tolerance(entry: dict, source_kind: str, source: dict, kind_of: Callable[[str], str]) -> None:
    """A file made from another form's file takes that file's tolerance on each of its own
    runtimes (kind_of: the source's kind -> the twin's, e.g. onnx_int8 -> ort_int8)."""
    from .runners import labels_for

    base = source.get("base") or source_kind
    tolerance = next((entry["tolerances"][label] for label in labels_for(base, source.get("variant"))
                      if label in entry["tolerances"]), None)
    if tolerance is not None:
        for label in labels_for(kind_of(base), source.get("variant")):
            entry["tolerances"][label] = dict(tolerance)


@dataclass(frozen=True)
class Form:
    kind: str                       # the manifest's artifact key
    suffix: str                     # the file is NAME + suffix
    format: str                     # tflite | onnx
    convert: Callable[[Subject], bytes]
    producer: tuple[str, ...]
    # Extra manifest fields, from the subject and the written file (step, micro, conversion).
    contract: Callable[[Subject, Path], dict] | None = None
    variant: str | None = None      # quantized forms: their variant, and the form they quantize
    base: str | None = None
    # Runtime labels this form adds to the tolerances, with their tolerance.
    tolerance: Callable[[Subject], dict] | None = None
    # Written only when asked for by its own option (the C source: --c-source), not by default.
    optional: bool = False
    # Figures measured on this machine's optional tools (the C source's flash and stack on the
    # host compiler and on emulated cores): (subject, file, its manifest entry) -> a dict kept in
    # device.json beside the manifest, never in it, so the export's bytes do not depend on
    # which tools are installed.
    measure: Callable[[Subject, Path, dict], dict] | None = None
    # Made from a serving graph alone (a SavedModel with no Keras config, readers/graph.py);
    # the others need the Keras layers.
    graph: bool = False


def describe(path: Path, fmt: str) -> dict:
    from .artifacts import describe_onnx, describe_tflite

    if fmt in ("c", "wasm", "js"):  # the C source and its WebAssembly describe themselves in
        return {}                   # their contracts (convert/csource/, convert/wasm.py)
    return describe_tflite(path) if fmt == "tflite" else describe_onnx(path)


@dataclass
class Written:
    artifacts: dict
    # Forms this model does not have, with the reason (recorded in the manifest).
    not_written: dict[str, str]
    # Forms whose converter failed: one line each (export and convert exit 3).
    missing: list[str]
    tolerances: dict[str, dict]
    # Per form written or not written: what it was made from (Reuse, the manifest's reuse_keys).
    reuse_keys: dict[str, str] = field(default_factory=dict)
    # The files taken from the previous export instead of converted again.
    reused: list[str] = field(default_factory=list)
    # Per form, what form.measure found (device.json, not the manifest).
    measured: dict[str, dict] = field(default_factory=dict)


def layer_hint(model, reason: str) -> str:
    """The layer a converter's message names, if it names one."""
    import re

    for layer in model.layers[::-1]:
        # TF name scopes add a _N suffix to the layer name.
        if re.search(rf"(?<![0-9A-Za-z]){re.escape(layer.name)}(_\d+)?(?![0-9A-Za-z])", reason):
            return f"layer '{layer.name}' ({type(layer).__name__}): "
    return ""


def write_forms(subject: Subject, out: Path, tools: dict, report: Progress,
                kinds: tuple[str, ...] | None = None, reuse: Reuse | None = None) -> Written:
    """Write every registered form (or those of kinds) of subject into out.

    A form whose previous file (reuse) was made from the same inputs is copied instead of
    converted, with its manifest entry, and probed like a new one.
    """
    from .probe import item_path, probe_many, tflm_item
    from .runners import labels_for
    from .tfenv import quiet_converters

    done = Written({}, {}, [], {})
    name = subject.name
    written: list[tuple[Form, Path, dict]] = []
    kept: list[tuple[Form, Path, dict]] = []
    for form in [f for f in registered()
                 if (kinds is None and not f.optional) or (kinds is not None and f.kind in kinds)]:
        key = reuse_key(subject, form.kind, tools)
        old = reuse.artifact(form.kind, key, f"{name}{form.suffix}") if reuse else None
        why_not = reuse.not_written(form.kind, key) if reuse and old is None else None
        if old is not None:
            report(name, f"reusing {old['file']}")
            kept.append((form, reuse.copy(old, out), old))
            done.reuse_keys[form.kind] = key
            continue
        if why_not is not None:
            done.not_written[form.kind] = why_not
            done.reuse_keys[form.kind] = key
            continue
        if subject.graph_only and not form.graph:
            done.not_written[form.kind] = NEEDS_LAYERS
            if key:
                done.reuse_keys[form.kind] = key
            continue
        report(name, f"writing {name}{form.suffix}")
        path = out / f"{name}{form.suffix}"
        try:
            with quiet_converters():
                data = form.convert(subject)
            check_interrupted()
        except Unavailable as exc:
            done.not_written[form.kind] = str(exc)
            if key:
                done.reuse_keys[form.kind] = key
            continue
        except Exception as exc:
            reason = first_line(exc)
            done.missing.append(f"{name}: {path.name} not written: "
                                f"{layer_hint(subject.model, reason)}{reason}")
            continue
        path.write_bytes(data)
        described = describe(path, form.format)
        if described.get("custom_operators"):
            path.unlink()
            done.missing.append(f"{name}: {path.name} not written: needs custom or Flex ops "
                                f"{described['custom_operators']}")
            continue
        written.append((form, path, described))
    # One child process loads and runs every new or reused file: a file that crashes a runtime
    # is dropped. A reused micro file also runs on TFLM in the arena its entry declares (a new
    # one is measured there by its contract). (C source has no runtime to crash.)
    items: list[Path | str] = [path for form, path, _ in written + kept
                               if form.format in ("tflite", "onnx")]
    items += [tflm_item(path, art["micro"]["arena_bytes"]) for _, path, art in kept
              if isinstance(art.get("micro"), dict)]
    # Why each file failed, whichever of its items (its runtime, TFLM) failed first.
    crashed: dict[Path, str] = {}
    for item, why in (probe_many(items) if items else {}).items():
        if why:
            crashed.setdefault(item_path(item)[0], why)
    order = [f.kind for f in registered()]
    done_forms = sorted([(f, p, a, True) for f, p, a in kept] + [(f, p, d, False) for f, p, d in written],
                        key=lambda item: order.index(item[0].kind))
    for form, path, known, was_reused in done_forms:
        why = crashed.get(path)
        if why:
            path.unlink()
            done.reuse_keys.pop(form.kind, None)
            done.missing.append(f"{name}: {path.name} not written: {why}")
            continue
        key = reuse_key(subject, form.kind, tools)
        if was_reused:
            done.artifacts[form.kind] = {**known, **manifest.file_entry(path)}
            done.reused.append(path.name)
        else:
            report(name, f"describing {path.name}")
            try:
                contract = form.contract(subject, path) if form.contract else {}
            except Unavailable as exc:  # e.g. an int8 file outside its own tolerance: not shipped
                path.unlink()
                done.not_written[form.kind] = str(exc)
                if key:
                    done.reuse_keys[form.kind] = key
                continue
            except Exception as exc:
                path.unlink()
                done.missing.append(f"{name}: {path.name} not written: {first_line(exc)}")
                continue
            extra = {"variant": form.variant, "base": form.base} if form.variant else {}
            done.artifacts[form.kind] = manifest.file_entry(
                path, format=form.format, **extra, **known, **contract,
                producer={k: tools[k] for k in form.producer})
        if key:
            done.reuse_keys[form.kind] = key
        if form.measure:
            art = done.artifacts[form.kind]
            figures = reuse.measured(form.kind, art["sha256"]) if reuse and was_reused else None
            if figures is None:
                report(name, f"measuring {path.name}")
                figures = {"file": path.name, "sha256": art["sha256"],
                           **form.measure(subject, path, art)}
            done.measured[form.kind] = figures
        if form.tolerance:
            tol = form.tolerance(subject)
            for label in labels_for(form.base or form.kind, form.variant):
                done.tolerances[label] = tol
    # Whichever files were reused, the manifest lists everything in the registered order.
    done.not_written = dict(sorted(done.not_written.items(), key=lambda kv: order.index(kv[0])))
    done.reuse_keys = dict(sorted(done.reuse_keys.items(), key=lambda kv: order.index(kv[0])))
    return done


def parse_forms(values: list[str] | None) -> tuple[str, ...] | None:
    """--forms: repeated or comma-separated form names (manifest artifact kinds); None = all."""
    if not values:
        return None
    known = [f.kind for f in registered() if not f.optional] + list(DERIVED) + list(ASKED)
    wanted = {v.strip() for item in values for v in item.split(",") if v.strip()}
    unknown = sorted(wanted - set(known))
    if unknown or not wanted:
        from .errors import UsageError

        what = f"unknown form {', '.join(unknown)}" if unknown else "--forms is empty"
        raise UsageError(f"{what}; choose from {', '.join(known)}")
    return tuple(kind for k in known if k in wanted for kind in ASKED.get(k, (k,)))


# Forms made from other forms' files after they are written, selected by --forms like the rest:
# ort, an .ort file beside every .onnx form (convert/ort.py); tflite_web, a file LiteRT.js
# runs beside every dynamic-batch .tflite form (convert/tflite_web.py).
DERIVED = ("ort", "tflite_web")
# Optional forms --forms may ask for by name (also written with --c-source), and the forms
# each name writes: wasm, NAME.wasm with its loader NAME.mjs (convert/wasm.py).
ASKED = {"wasm": ("wasm", "wasm_loader")}


def registered() -> tuple[Form, ...]:
    """Every form, in the order they are written (quantized forms after what they quantize)."""
    from .convert import csource, micro, onnx, step, tflite, wasm

    return (*tflite.FORMS, *onnx.FORMS, *step.FORMS, *micro.FORMS, *csource.FORMS, *wasm.FORMS)
