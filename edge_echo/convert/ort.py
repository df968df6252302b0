"""ONNX Runtime Mobile's ORT format: NAME.ort beside every .onnx form, and per export directory
the required_operators.config a reduced ONNX Runtime build is made from.

Each .ort is what `python -m onnxruntime.tools.convert_onnx_models_to_ort` writes
by default (optimization style Fixed, level all, the x86-only NCHWc layout
left out so the file runs on ARM too), then rewritten in ortformat's
canonical layout so the bytes are reproducible. Its ONNX source's manifest
entry is the contract: the same inputs, outputs, step state and tolerance;
verify runs it on ONNX Runtime (onnxruntime-ort) against Keras like the rest.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections import Counter
from pathlib import Path

from .. import manifest, ortformat

OPTIMIZATION = {"style": "fixed", "level": "all", "disabled_optimizers": ["NchwcTransformer"],
                "tool": "onnxruntime.tools.convert_onnx_models_to_ort (its defaults for ARM)"}
CONFIG = "required_operators.config"
# How an app opens each file, for the manifest and exported/README.md.
LOADING = ("ONNX Runtime Mobile (onnxruntime-android / onnxruntime-objc / onnxruntime-c, or a "
           "reduced build from required_operators.config): "
           "OrtSession(env, \"NAME.ort\") / InferenceSession(\"NAME.ort\"); the .ort suffix "
           "(or session option session.load_model_format=ORT) selects the format")


_CHILD = """
import json, sys
from pathlib import Path
from edge_echo.convert.ort import mobile_usability, to_ort
from edge_echo.errors import first_line
for item in sys.argv[1:]:
    print("BEGIN", item, flush=True)
    source, target = json.loads(item)
    try:
        Path(target).write_bytes(to_ort(Path(source)))
        found = mobile_usability(Path(source))
    except BaseException as exc:
        print("ERROR", first_line(exc), flush=True)
        continue
    print("OK", json.dumps(found), flush=True)
"""


def _convert_in_child(pairs: list[tuple[Path, Path]]) -> dict[Path, tuple[bool, str]]:
    """(source .onnx, target .ort) converted in a child process: per target, (True, the
    usability findings as JSON) or (False, why, in one line)."""
    from ..probe import in_children

    if not pairs:
        return {}
    items = {json.dumps([str(source), str(target)]): target for source, target in pairs}
    found = in_children(_CHILD, list(items), doing="converting")
    return {target: found[item] for item, target in items.items()}


def kind_of(onnx_kind: str) -> str:
    """The .ort form of an ONNX form's manifest kind: onnx -> ort, onnx_step -> ort_step,
    onnx_int8 -> ort_int8."""
    return "ort" + onnx_kind[len("onnx"):]


def sources(artifacts: dict) -> list[tuple[str, dict]]:
    """The ONNX forms an .ort is made from, in manifest order."""
    return [(kind, art) for kind, art in artifacts.items()
            if art.get("format") == "onnx" and kind.startswith("onnx")]


def file_name(onnx_file: str) -> str:
    return onnx_file[:-len(".onnx")] + ".ort"


def to_ort(onnx_path: Path, canonical: bool = True) -> bytes:
    """The ORT-format file of an ONNX model (in ortformat's canonical layout)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edge-echo-ort-") as scratch:
        target = Path(scratch) / "model.ort"
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(target)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.save_model_format", "ORT")
        options.log_severity_level = 4
        ort.InferenceSession(str(onnx_path), sess_options=options,
                             providers=["CPUExecutionProvider"],
                             disabled_optimizers=OPTIMIZATION["disabled_optimizers"])
        data = target.read_bytes()
    return ortformat.canonical(data) if canonical else data


_ELEM = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
         10: "float16", 11: "float64"}


def describe(path: Path) -> dict:
    """Inputs, outputs, operators and the format version, read back from the .ort file."""
    from ..errors import ArtifactError

    try:
        doc = ortformat.content(path.read_bytes())
        graph = doc["Model"]["Graph"]
        args = {a["Name"]: a for a in graph.get("NodeArgs", [])}

        def value(name: bytes) -> dict:
            tensor = args[name]["Type"]["Value"]
            dims = tensor.get("Shape", {}).get("Dim", [])
            return {"name": name.decode(),
                    "shape": [d.get("Value", {}).get("DimValue") or None for d in dims],
                    "dtype": _ELEM.get(tensor.get("ElemType"), str(tensor.get("ElemType")))}

        ops = Counter(((n.get("Domain") or b"").decode() + ":" if n.get("Domain") else "")
                      + n["OpType"].decode() for n in graph.get("Nodes", []))
        weights = Counter(_ELEM.get(t.get("DataType"), str(t.get("DataType")))
                          for t in graph.get("Initializers", []))
        return {"weight_types": dict(sorted(weights.items())),
                "inputs": [value(n) for n in graph.get("Inputs", [])],
                "outputs": [value(n) for n in graph.get("Outputs", [])],
                "operators": dict(sorted(ops.items())),
                "ort_format_version": doc.get("OrtVersion", b"").decode()}
    except ortformat.FormatError as exc:
        raise ArtifactError(f"{path.name}: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{path.name}: not a readable ORT format model ({exc!r})") from None


def mobile_usability(onnx_path: Path) -> dict:
    """onnxruntime.tools.check_onnx_model_mobile_usability's findings on the ONNX source, as
    data: per execution provider (NNAPI, CoreML) whether the model should perform well on it
    as it is and with its dynamic shapes fixed, the nodes it takes, the partitions and the
    operators it does not take."""
    uc = _tools("mobile_helpers.usability_checker")
    utils = _tools("onnx_model_utils")
    ModelProtoWithShapeInfo, optimize_model = utils.ModelProtoWithShapeInfo, utils.optimize_model

    quiet = logging.getLogger("edge-echo.usability")
    quiet.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="edge-echo-usability-") as scratch:
        basic = Path(scratch) / onnx_path.name
        optimize_model(onnx_path, basic, use_external_initializers=True)  # as the tool does first
        model = ModelProtoWithShapeInfo(basic).model_with_shape_info
        dynamic, _ = uc.check_shapes(model.graph, quiet)
        checks = {
            "nnapi": lambda fixed: uc.check_nnapi_partitions(model, fixed),
            "coreml_neuralnetwork": lambda fixed: uc.check_coreml_partitions(
                model, fixed, "coreml_supported_neuralnetwork_ops.md"),
            "coreml_mlprogram": lambda fixed: uc.check_coreml_partitions(
                model, fixed, "coreml_supported_mlprogram_ops.md"),
        }
        found = {}
        for ep, check in checks.items():
            as_is = check(True)
            fixed = check(False) if dynamic else as_is
            found[ep] = {
                "as_is": as_is.suitability().name,
                "with_fixed_shapes": fixed.suitability().name,
                "supported_nodes": fixed.num_supported_nodes, "nodes": fixed.num_nodes,
                "partitions": fixed.num_partitions,
                "unsupported_operators": sorted(fixed.unsupported_ops),
            }
    summary = {"tool": "onnxruntime.tools.check_onnx_model_mobile_usability",
               "dynamic_inputs": sorted(v.name for v in dynamic), **found}
    if dynamic and any(f["with_fixed_shapes"] != "NO" for f in found.values()):
        summary["advice"] = ("fix the dynamic shapes first (python -m "
                             "onnxruntime.tools.make_dynamic_shape_fixed) to use NNAPI or CoreML")
    elif all(f["with_fixed_shapes"] == "NO" for f in found.values()):
        summary["advice"] = "run on the CPU execution provider; NNAPI and CoreML would take too little of it"
    return summary


def _tools(module: str):
    """An onnxruntime.tools module, imported without the root logging handler it installs
    (its logger calls logging.basicConfig) and with its own INFO lines silenced."""
    import importlib

    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        imported = importlib.import_module(f"onnxruntime.tools.{module}")
    finally:
        root.handlers[:] = handlers
    for name in ("ort_format_model.utils", "ort_format_model.operator_type_usage_processors",
                 "usability_checker"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return imported


def write_config(directory: Path, files: list[str], tools: dict) -> dict | None:
    """required_operators.config (with the types each operator needs) for every .ort file of
    the directory: what a reduced build (build.sh --include_ops_by_config
    --enable_reduced_operator_type_support) takes. Its manifest entry, or None without .ort files."""
    if not files:
        return None
    create_config_from_models = _tools("ort_format_model.utils").create_config_from_models
    target = directory / CONFIG
    with tempfile.TemporaryDirectory(prefix="edge-echo-config-") as scratch:
        staged = Path(scratch) / CONFIG
        create_config_from_models([directory / f for f in sorted(files)], staged, True)
        lines = staged.read_text(encoding="utf-8").splitlines()
    # The header names each model by its path: here, its name in the directory.
    body = [line for line in lines if not line.startswith("#")]
    header = ["# Generated by edge-echo from the ORT format model/s:",
              *(f"# - {f}" for f in sorted(files)),
              "# For a reduced ONNX Runtime build: ./build.sh --minimal_build --include_ops_by_config "
              f"{CONFIG} --enable_reduced_operator_type_support"]
    target.write_text("\n".join(header + body) + "\n", encoding="utf-8")
    return manifest.file_entry(target, format="ort-config", of=sorted(files),
                               producer={"onnxruntime": tools["onnxruntime"]})


def write(entry: dict, out: Path, subject, tools: dict, report, reuse=None, keys: dict | None = None,
          reused: list[str] | None = None) -> list[str]:
    """An .ort file beside every .onnx form of the entry, each probed in one child and given its
    source's contract and tolerance; one line per file that could not be made. A file the
    previous export made from the same inputs (reuse) is copied instead."""
    from ..errors import first_line
    from ..forms import twin_key, twin_tolerance
    from ..probe import probe_many

    arts, name = entry["artifacts"], subject.name
    keys = {} if keys is None else keys
    missing, made, todo = [], [], []
    for src_kind, src in sources(arts):
        kind, target = kind_of(src_kind), file_name(src["file"])
        # The .onnx it is made from must be the same bytes too.
        key = twin_key(subject, kind, tools, src)
        old = reuse.artifact(kind, key, target) if reuse else None
        if old is not None:
            report(name, f"reusing {target}")
            made.append((src_kind, src, kind, reuse.copy(old, out), old, key))
            continue
        report(name, f"writing {target}")
        todo.append((src_kind, src, kind, out / target, key))
    # ONNX Runtime's optimizer is native code: the conversions (and the usability check, which
    # optimizes too) run in a child, so that one that crashes costs its file, not the export.
    converted = _convert_in_child([(out / src["file"], path) for _, src, _, path, _ in todo])
    usability: dict[Path, dict] = {}
    for src_kind, src, kind, path, key in todo:
        ok, said = converted[path]
        if not ok:
            path.unlink(missing_ok=True)
            missing.append(f"{name}: {path.name} not written: {said}")
            continue
        usability[path] = json.loads(said)
        made.append((src_kind, src, kind, path, None, key))
    crashed = probe_many([path for *_, path, _, _ in made]) if made else {}
    for src_kind, src, kind, path, old, key in made:
        if crashed.get(path):
            path.unlink()
            missing.append(f"{name}: {path.name} not written: {crashed[path]}")
            continue
        if old is not None:
            arts[kind] = {**old, **manifest.file_entry(path)}
            if reused is not None:
                reused.append(path.name)
        else:
            try:
                described = describe(path)
            except Exception as exc:
                path.unlink()
                missing.append(f"{name}: {path.name} not written: {first_line(exc)}")
                continue
            variant = {"variant": src["variant"], "base": "ort"} if src.get("variant") else {}
            contract = {k: src[k] for k in ("step", "quantization") if k in src}
            arts[kind] = manifest.file_entry(
                path, format="ort", of=src["file"], **variant, **described, **contract,
                ort={"optimization": OPTIMIZATION, "load": LOADING},
                mobile_usability=usability[path], producer={"onnxruntime": tools["onnxruntime"]})
        if key:
            keys[kind] = key
        # The same tolerance as the ONNX file it is made from, on each of its runtimes.
        twin_tolerance(entry, src_kind, src, kind_of)
    return missing
