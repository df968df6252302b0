"""LiteRT.js's form: NAME.web.tflite beside every .tflite form but the micro ones (the
unrolled file, the step file and their quantized variants), its batch fixed at 1 (a file
whose batch is fixed already is copied as it is).

LiteRT.js (npm @litertjs/core 2.5) compiles a model for the shapes it declares and has no call
to resize an input: a file whose batch is dynamic (shape signature -1, as every edge-echo
.tflite but the micro forms) is refused at run time ("TensorBuffer ranked tensor type
Float32[1, 5, 1] does not match expected ranked tensor type Float32[-1, 5, 1]"). The web file
is the same flatbuffer with the dynamic shape signatures dropped, so every tensor has the static
shape LiteRT allocates for a batch of 1: the same operators, weights and arithmetic. Its source's
manifest entry is its contract (inputs, outputs, step state, tolerance); verify runs it on
LiteRT.js in headless Chromium (litertjs, litertjs-step) against Keras like the rest.

The micro forms have a static batch already, but their fused LSTM keeps its state in variable
tensors that LiteRT.js cannot reset between sequences: they get no web file.
"""

from __future__ import annotations

from pathlib import Path

from .. import manifest

LOADING = ("LiteRT.js: await loadLiteRt(wasmDir); const model = await loadAndCompile(bytes, "
           "{accelerator: 'wasm'}); model.run([new Tensor(x, [1, ...])]): one sequence a call")


def kind_of(tflite_kind: str) -> str:
    """tflite -> tflite_web, tflite_step -> tflite_web_step, tflite_int8 -> tflite_web_int8."""
    return "tflite_web" + tflite_kind[len("tflite"):]


def sources(artifacts: dict) -> list[tuple[str, dict]]:
    """The .tflite forms a web file is made from: the full and step files and their variants
    (not the micro forms, nor a web file itself)."""
    return [(kind, art) for kind, art in artifacts.items()
            if art.get("format") == "tflite" and kind.startswith("tflite")
            and not kind.startswith(("tflite_micro", "tflite_web"))
            and (kind in ("tflite", "tflite_step") or art.get("base") == "tflite")]


def file_name(tflite_file: str) -> str:
    return tflite_file[:-len(".tflite")] + ".web.tflite"


def static(data: bytes) -> tuple[bytes, int]:
    """The flatbuffer with every dynamic shape signature dropped (the tensor's shape, which
    holds 1 for a dynamic batch, is then its only shape), and how many tensors changed."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    changed = 0
    # The main graph only: a WHILE loop's body (a serving graph's recurrence) sizes its tensors
    # as it runs, from what the main graph gives it.
    for subgraph in (model.subgraphs or [])[:1]:
        for tensor in subgraph.tensors or []:
            signature = tensor.shapeSignature
            if signature is not None and any(int(d) < 0 for d in signature):
                tensor.shapeSignature = None
                changed += 1
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), changed


def write(entry: dict, out: Path, subject, tools: dict, report, reuse=None, keys: dict | None = None,
          reused: list[str] | None = None) -> list[str]:
    """A web file beside every dynamic-batch .tflite form of the entry, each probed (LiteRT, in
    a child) and given its source's contract and tolerance; one line per file that could not be
    made. A file the previous export made from the same bytes (reuse) is copied instead."""
    from ..artifacts import describe_tflite
    from ..errors import first_line
    from ..forms import twin_key, twin_tolerance
    from ..probe import probe_many

    arts, name = entry["artifacts"], subject.name
    keys = {} if keys is None else keys
    missing, made = [], []
    for src_kind, src in sources(arts):
        kind, target = kind_of(src_kind), file_name(src["file"])
        key = twin_key(subject, kind, tools, src)
        old = reuse.artifact(kind, key, target) if reuse else None
        if old is not None:
            report(name, f"reusing {target}")
            made.append((src_kind, src, kind, reuse.copy(old, out), old, key, None))
            continue
        try:
            source = (out / src["file"]).read_bytes()
            data, changed = static(source)
            data = data if changed else source
        except Exception as exc:
            missing.append(f"{name}: {target} not written: {first_line(exc)}")
            continue
        # A file static already is copied as it is: every .tflite form has its web twin, the
        # file litertjs runs.
        report(name, f"writing {target}")
        (out / target).write_bytes(data)
        made.append((src_kind, src, kind, out / target, None, key, changed))
    crashed = probe_many([path for *_, path, _, _, _ in made]) if made else {}
    for src_kind, src, kind, path, old, key, changed in made:
        if crashed.get(path):
            # Its source ships and runs: the model has no web twin, said, not failed.
            path.unlink()
            entry.setdefault("not_written", {})[kind] = (
                f"with its batch fixed at 1 it does not run ({crashed[path]})")
            continue
        if old is not None:
            arts[kind] = {**old, **manifest.file_entry(path)}
            if reused is not None:
                reused.append(path.name)
        else:
            variant = {"variant": src["variant"], "base": "tflite_web"} if src.get("variant") else {}
            contract = {k: src[k] for k in ("step", "quantization") if k in src}
            described = describe_tflite(path)
            arts[kind] = manifest.file_entry(
                path, format="tflite", of=src["file"], **variant, **described, **contract,
                web={"batch": 1, "why": ("LiteRT.js cannot resize an input: the source's dynamic "
                     "batch fixed at 1 (shape signatures dropped; operators and weights unchanged)"
                     if changed else "the source's batch is fixed already: the same bytes"),
                     "load": LOADING},
                producer={k: tools[k] for k in ("edge-echo", "ai-edge-litert") if k in tools})
        if key:
            keys[kind] = key
        twin_tolerance(entry, src_kind, src, kind_of)
    return missing
