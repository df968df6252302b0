"""manifest.json: what an export directory holds, and the integrity check on it.

The manifest is the one source of truth a verifier or a device app reads:
per model its spec, tolerances and artifacts (file, size, sha256, inputs,
outputs, operators, producing tool versions).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import ArtifactError

SCHEMA_VERSION = 1
FILENAME = "manifest.json"
# What verify --json, bench --json and report write beside an export by default (report --run,
# make run): edge-echo's own files, which a new export into the directory replaces with the rest.
RESULT_FILES = {"verify": "verify.json", "bench": "bench.json", "report": "report.html"}
# What an export measured with its machine's optional tools (results.py): beside the manifest,
# written by the export itself, never part of the bytes meant to be reproducible.
DEVICE_FILE = "device.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path, **fields) -> dict:
    return {"file": path.name, "size": path.stat().st_size, "sha256": sha256_file(path), **fields}


def dumps(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=False) + "\n"


def load(directory: Path) -> dict:
    """Read and shape-check a manifest; every failure is one ArtifactError line."""
    if not directory.exists():
        raise ArtifactError(f"{directory}: no such directory (run `edge-echo export` first)")
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: not a directory")
    path = directory / FILENAME
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; not an edge-echo export directory")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ArtifactError(
            f"{path}: schema_version {version!r} is not supported (this edge-echo reads "
            f"{SCHEMA_VERSION}); re-export with this version"
        )
    try:
        _check_models(manifest.get("models"), directory)
        _check_files(manifest.get("files", {}), directory)
    except _Invalid as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    return manifest


class _Invalid(Exception):
    pass


def _need(condition: bool, where: str, what: str) -> None:
    if not condition:
        raise _Invalid(f"{where}: expected {what}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value \
        and abs(value) != float("inf")


def _check_io(items, where: str) -> None:
    _need(isinstance(items, list) and items, where, "a non-empty list")
    for i, item in enumerate(items):
        at = f"{where}/{i}"
        _need(isinstance(item, dict), at, "an object")
        _need(isinstance(item.get("name"), str) and item["name"], f"{at}/name", "a name")
        shape = item.get("shape")
        _need(isinstance(shape, list) and shape and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in shape),
            f"{at}/shape", "a list of positive sizes or null")
        _need(item.get("probability") in (None, "softmax", "sigmoid"), f"{at}/probability",
              "softmax or sigmoid")


def _check_models(models, directory: Path) -> None:
    """Everything verify, bench and the runners read, checked before any of it is used."""
    _need(isinstance(models, dict) and models, "models", "at least one model")
    for name, model in models.items():
        where = f"models/{name}"
        _need(isinstance(model, dict), where, "an object")
        for key in ("spec", "inputs", "outputs", "artifacts", "tolerances"):
            _need(key in model, f"{where}/{key}", "a value (missing)")
        _need(isinstance(model["spec"], dict), f"{where}/spec", "an object")
        _check_io(model["inputs"], f"{where}/inputs")
        _check_io(model["outputs"], f"{where}/outputs")
        _need(len(model["inputs"][0]["shape"]) >= 2, f"{where}/inputs/0/shape",
              "a batch and at least one more dimension")
        tolerances = model["tolerances"]
        _need(isinstance(tolerances, dict), f"{where}/tolerances", "an object")
        for runtime, tol in tolerances.items():
            at = f"{where}/tolerances/{runtime}"
            _need(isinstance(tol, dict), at, "an object")
            for k in ("atol", "rtol"):
                if k in tol:
                    _need(_is_number(tol[k]) and tol[k] >= 0, f"{at}/{k}", "a number >= 0")
        artifacts = model["artifacts"]
        _need(isinstance(artifacts, dict) and "reference" in artifacts, f"{where}/artifacts",
              "an object listing at least the reference data")
        for kind, art in artifacts.items():
            at = f"{where}/artifacts/{kind}"
            _check_entry(art, at)
            _need(isinstance(art.get("format"), str), f"{at}/format", "a format name")
            if "step" in art:
                _check_step(art["step"], f"{at}/step")
            if "runs_on" in art:
                _need(isinstance(art["runs_on"], list)
                      and all(isinstance(r, str) for r in art["runs_on"]), f"{at}/runs_on",
                      "a list of runtime names")
                _need(isinstance(art.get("not_on", {}), dict), f"{at}/not_on", "an object")
            if "variant" in art:
                _need(isinstance(art["variant"], str) and art["variant"], f"{at}/variant",
                      "a variant name")
            try:
                artifact_path(directory, art)
            except ArtifactError as exc:
                raise _Invalid(f"{at}/file: {exc}") from None


def _check_entry(art, at: str) -> None:
    """A file entry: an object naming the file, with its sha256 and size."""
    _need(isinstance(art, dict), at, "an object")
    _need(isinstance(art.get("file"), str), f"{at}/file", "a file name")
    _need(isinstance(art.get("sha256"), str) and len(art["sha256"]) == 64, f"{at}/sha256",
          "a sha256 hex digest")
    _need(isinstance(art.get("size"), int) and not isinstance(art["size"], bool)
          and art["size"] >= 0, f"{at}/size", "a size in bytes")


def _check_files(files, directory: Path) -> None:
    """The directory's own files (required_operators.config): named, sized and hashed."""
    _need(isinstance(files, dict), "files", "an object")
    for kind, art in files.items():
        at = f"files/{kind}"
        _check_entry(art, at)
        try:
            artifact_path(directory, art)
        except ArtifactError as exc:
            raise _Invalid(f"{at}/file: {exc}") from None


def all_files(manifest: dict) -> list[dict]:
    """Every file entry: each model's artifacts, then the directory's own files."""
    return [art for m in manifest["models"].values() for art in m["artifacts"].values()] + \
        list(manifest.get("files", {}).values())


def _check_step(step, where: str) -> None:
    _need(isinstance(step, dict), where, "an object")
    _check_io(step.get("inputs"), f"{where}/inputs")
    _check_io(step.get("outputs"), f"{where}/outputs")
    _need(step.get("sequence_output") in ("every_step", "last_step"), f"{where}/sequence_output",
          "every_step or last_step")
    state = step.get("state")
    _need(isinstance(state, list), f"{where}/state", "a list")
    names_in = {d["name"] for d in step["inputs"]}
    names_out = {d["name"] for d in step["outputs"]}
    for i, item in enumerate(state):
        at = f"{where}/state/{i}"
        _need(isinstance(item, dict) and isinstance(item.get("input"), str)
              and isinstance(item.get("output"), str) and item["input"] in names_in
              and item["output"] in names_out, at, "an input and an output of the step model")
        _need(isinstance(item.get("shape"), list) and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in item["shape"]), f"{at}/shape", "a list of positive sizes or null")
        _need(_is_number(item.get("initial")), f"{at}/initial", "a number")


def select_models(doc: dict, names: list[str] | None) -> dict:
    """The manifest with only the named models (repeat or comma-separate); all when names is empty."""
    if not names:
        return doc
    wanted = [v.strip() for item in names for v in item.split(",") if v.strip()]
    unknown = sorted(set(wanted) - set(doc["models"]))
    if unknown or not wanted:
        from .errors import UsageError

        what = f"no model {', '.join(unknown)} in this export" if unknown else "--models is empty"
        raise UsageError(f"{what}; it has {', '.join(doc['models'])}")
    return {**doc, "models": {k: v for k, v in doc["models"].items() if k in wanted}}


def artifact_path(directory: Path, artifact: dict) -> Path:
    name = artifact["file"]
    if not isinstance(name, str) or "\x00" in name or Path(name).name != name \
            or name in ("", ".", ".."):
        raise ArtifactError(f"manifest names file {name!r}, which is outside the export directory")
    return directory / name


def check_integrity(directory: Path, manifest: dict) -> list[str]:
    """Check every listed file against its size and sha256 before anything loads it."""
    checked = []
    for art in all_files(manifest):
        path = artifact_path(directory, art)
        if not path.is_file():
            raise ArtifactError(f"{path}: listed in the manifest but missing")
        if path.stat().st_size != art["size"] or sha256_file(path) != art["sha256"]:
            raise ArtifactError(
                f"{path}: sha256 does not match the manifest (altered or corrupt); not loaded"
            )
        checked.append(art["file"])
    return checked


def file_status(directory: Path, art: dict) -> str | None:
    """None when the listed file is intact; else what is wrong with it, in a few words."""
    path = artifact_path(directory, art)
    if not path.is_file():
        return "missing"
    if path.stat().st_size != art["size"]:
        return f"altered: {path.stat().st_size} bytes, the manifest lists {art['size']}"
    if sha256_file(path) != art["sha256"]:
        return "altered: sha256 does not match the manifest"
    return None


def command_line(verb: str, *arguments: str, **options) -> list[str]:
    """The edge-echo command that makes this export again, from the options it was made with:
    None and False are left out, True is a flag, a list or tuple is comma-separated, a pair of
    numbers is two values. --out is left out (it is the directory the manifest lies in), and so is
    what does not change a byte (--jobs, --retrain, --force, --quiet)."""
    line = ["edge-echo", verb, *arguments]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            line.append(flag)
        elif isinstance(value, tuple) and value and all(isinstance(v, float) for v in value):
            line += [flag, *(repr(v) for v in value)]
        elif isinstance(value, (list, tuple)):
            if value:
                line += [flag, ",".join(map(str, value))]
        else:
            line += [flag, str(value)]
    return line


def artifact_kind(entry: dict, art: dict) -> str:
    """The key under which a model's manifest entry lists this artifact (tflite_int8, ...)."""
    return next(kind for kind, listed in entry["artifacts"].items() if listed is art)


def listed_files(manifest: dict) -> set[str]:
    return {art["file"] for art in all_files(manifest)}
