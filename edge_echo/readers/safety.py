"""What a reader checks before it deserializes anything: no code from the file, ever.

A model's config is JSON, read as data. Every object in it must be a built-in
Keras class (a layer, initializer, regularizer, constraint, activation or
dtype policy): a Lambda layer carries Python bytecode, a custom object names
code of the user's, and neither is ever turned into a callable. A SavedModel's
graph is a protobuf, read as data: an op that reaches outside the process
(files, Python, the network) refuses the file by its name, except the
variable restore a SavedModel needs to load.
"""

from __future__ import annotations

import functools
import re

from ..errors import ArtifactError

CODE_LAYERS = ("Lambda",)
# Keras's own model classes, besides the layers.
MODEL_CLASSES = ("Sequential", "Functional", "Model")
# tf-keras names Keras 3 has under another namespace or not at all, refused elsewhere with
# their own reason (readers/translate.py) rather than here as custom objects.
KERAS2_ONLY = ("Policy", "CuDNNLSTM", "CuDNNGRU", "TFOpLambda", "SlicingOpLambda")
# How the serializers write plain data (a tuple, a shape, an array's values): never code.
DATA_MARKERS = ("__tuple__", "__ellipsis__", "__slice__", "__numpy__", "__bytes__", "__tensor__",
                "__typespec__", "__keras_tensor__", "TensorShape")


@functools.cache
def _known_classes() -> set[str]:
    import keras

    names = set(MODEL_CLASSES) | set(KERAS2_ONLY) | set(DATA_MARKERS)
    for namespace in (keras.layers, keras.initializers, keras.regularizers, keras.constraints,
                      keras.dtype_policies):
        names |= {n for n in dir(namespace) if n[:1].isupper()}
    return names


@functools.cache
def _operations() -> dict[str, set[str]]:
    """Keras's own operations a functional model can call on its tensors (keras.ops.not_equal
    saves as NotEqual of keras.src.ops.numpy), by module: built-in code, never the file's."""
    import importlib
    import pkgutil

    import keras.src.ops as ops
    from keras.src.ops.operation import Operation

    found: dict[str, set[str]] = {}
    for info in pkgutil.iter_modules(ops.__path__):
        name = f"{ops.__name__}.{info.name}"
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found[name] = {k for k, v in vars(module).items()
                       if isinstance(v, type) and issubclass(v, Operation)
                       and v.__module__ == name}
    return found


@functools.cache
def _activations() -> set[str]:
    """The activations by name: keras.activations' functions, not its get/serialize/deserialize
    (which would resolve further objects named by the file)."""
    import keras

    return {n for n in dir(keras.activations) if not n.startswith("_")
            and n not in ("get", "serialize", "deserialize")
            and callable(getattr(keras.activations, n))}


def check_config(config, where: str) -> None:
    """Refuse a config that would deserialize anything but built-in Keras objects."""
    known, activations, operations = _known_classes(), _activations(), _operations()

    def walk(node, path: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, path)
            return
        if not isinstance(node, dict):
            return
        cls = node.get("class_name")
        if isinstance(cls, str):
            inner = node.get("config")
            name = inner.get("name") if isinstance(inner, dict) else None
            what = f"layer '{name}'" if isinstance(name, str) else f"'{cls}'"
            if cls in CODE_LAYERS or cls == "__lambda__":
                raise ArtifactError(f"{where}: {what} is a Lambda: it carries Python code, which "
                                    "edge-echo never runs; rebuild it from built-in layers")
            module = node.get("module")
            registered = node.get("registered_name")
            if cls == "function":
                if not (isinstance(inner, str) and inner in activations) or (
                        isinstance(module, str) and not re.match(r"(keras|tf_keras)(\.|$)", module)):
                    origin = f" of module '{module}'" if isinstance(module, str) else ""
                    raise ArtifactError(f"{where}: a function '{inner}'{origin} that is not a "
                                        "built-in Keras activation (code of yours, which "
                                        "edge-echo never runs)")
            elif isinstance(module, str) and cls in operations.get(module, ()):
                pass  # a Keras operation on a tensor of the model
            elif cls not in known or (isinstance(module, str) and not re.match(
                    r"(keras|tf_keras)(\.|$)", module)) or (
                    isinstance(registered, str) and registered not in (cls, "function")):
                origin = f" from module '{module}'" if isinstance(module, str) else ""
                raise ArtifactError(f"{where}: {what} is a custom object ('{registered or cls}'"
                                    f"{origin}): edge-echo loads no code from a model file; "
                                    "rebuild it from built-in Keras layers")
        for key, value in node.items():
            if key in ("compile_config", "training_config"):
                continue  # never deserialized: models are loaded with compile=False
            if key in ("activation", "recurrent_activation") and isinstance(value, str) \
                    and value not in activations:
                raise ArtifactError(f"{where}: activation '{value}' is not a built-in Keras "
                                    "activation (code of yours, which edge-echo never runs)")
            walk(value, path)

    walk(config, "")


# Ops a SavedModel may not hold outside its variable restore: they read or write files,
# run Python, or talk to other processes. Matched by name, before anything runs.
FORBIDDEN_OPS = re.compile(
    r"^(ReadFile|WriteFile|MatchingFiles|DeleteFile|ImmutableConst|PyFunc|PyFuncStateless|"
    r"EagerPyFunc|Save|SaveV2|SaveSlices|Restore|RestoreV2|RestoreSlice|MergeV2Checkpoints|"
    r"InitializeTableFromTextFile(V2)?|LoadAndRemapMatrix|Print(V2)?|Rpc|TryRpc|"
    r"_?(Host)?Send|_?(Host)?Recv|Collective\w*|Debug\w*|\w*Summary\w*|\w*SummaryWriter|"
    r"\w*Reader(V2)?|Reader\w*|\w*Dataset(V\d)?|\w*Iterator\w*|Experimental\w*|"
    r"\w*FileSystem\w*|ExecuteTPU\w*|TPU\w*)$")
# The functions of a SavedModel that save and restore its variables (their SaveV2 and
# RestoreV2 read and write the checkpoint the loader names, nothing else).
SAVER_FUNCTION = re.compile(r"^__inference__traced_(save|restore)_\d+$")
SAVER_MAIN_OPS = {"Placeholder", "StatefulPartitionedCall", "PartitionedCall", "NoOp", "Const",
                  "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "VarIsInitializedOp",
                  "Identity", "SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename",
                  "StringJoin"}


def check_graph(saved_model_pb: bytes, where: str) -> tuple[list[str], str | None]:
    """Every op of the SavedModel's graphs, by name, before any of it runs; the op names it
    holds (sorted) and the TensorFlow version that wrote it, for the manifest. Refuses ops
    outside the inference set and ops this TensorFlow does not know (a custom op library would
    have to be loaded: code)."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.framework import op_def_registry

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString(saved_model_pb)
    except Exception:
        raise ArtifactError(f"{where}: saved_model.pb is not a SavedModel protobuf") from None
    ops: set[str] = set()
    version = None
    for meta in proto.meta_graphs:
        version = version or meta.meta_info_def.tensorflow_version or None
        graph = meta.graph_def
        places = [("the main graph", graph.node, True)] + [
            (f"function {f.signature.name}", f.node_def, bool(SAVER_FUNCTION.match(f.signature.name)))
            for f in graph.library.function]
        functions = {f.signature.name for f in graph.library.function}
        for place, nodes, saver in places:
            for node in nodes:
                op = node.op
                if op in functions:
                    continue  # a call of a function of the library, checked as one
                ops.add(op)
                if saver and op in SAVER_MAIN_OPS:
                    continue
                if FORBIDDEN_OPS.match(op):
                    raise ArtifactError(f"{where}: the graph holds op {op} ({place}), which "
                                        "reaches outside the process (files, Python or the "
                                        "network); edge-echo runs no such graph")
                if op_def_registry.get(op) is None:
                    raise ArtifactError(f"{where}: the graph holds op {op} ({place}), which "
                                        "this TensorFlow does not know (a custom op library, "
                                        "which edge-echo does not load)")
    return sorted(ops), version


# A weight array may not declare more than this and more than RATIO x what the file stores.
HUGE_BYTES, RATIO = 4 << 30, 1000


def check_hdf5(file, where: str) -> None:
    """An HDF5 file's links and datasets, before a loader reads any: a weights file has no use for
    an external or soft link, external storage or a virtual dataset (each makes the loader read
    another file of this machine into the weights: tf-keras's legacy loader follows them, Keras 3
    guards itself since CVE-2026-1669), nor for a dataset that declares far more than it holds.
    file: a path or a file object (a .keras zip's model.weights.h5)."""
    import h5py

    try:
        handle = h5py.File(file, "r")
    except OSError as exc:
        raise ArtifactError(f"{where}: not a readable HDF5 file ({exc})") from None
    with handle:
        problems: list[str] = []

        def visit(group, prefix: str) -> None:
            for name in group:
                path = f"{prefix}/{name}"
                link = group.get(name, getlink=True)
                if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
                    problems.append(f"{path} is a {type(link).__name__}")
                    continue
                item = group.get(name)
                if isinstance(item, h5py.Group):
                    visit(item, path)
                elif isinstance(item, h5py.Dataset):
                    if item.is_virtual:
                        problems.append(f"{path} is a virtual dataset")
                    elif item.id.get_create_plist().get_external_count():
                        problems.append(f"{path} keeps its values in another file")
                    else:
                        declared = item.size * item.dtype.itemsize
                        stored = item.id.get_storage_size()
                        if declared > HUGE_BYTES and declared > RATIO * max(stored, 1):
                            problems.append(f"{path} declares {declared:,} bytes and stores "
                                            f"{stored:,}")
                if problems:
                    return

        visit(handle, "")
    if problems:
        raise ArtifactError(f"{where}: {problems[0]}, which would make the loader read outside "
                            "this file; edge-echo reads no such HDF5 file")
