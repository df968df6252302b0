"""The JSON that verify --json and bench --json write, as report reads it back.

One leaf module (it imports nothing of edge-echo's) holds both schemas, so that
the writers (verify.py, bench.py) and the reader (report.py) cannot drift apart;
docs/results-schema.md describes every field. A change that removes or renames
a field, or changes what one means, takes the next version; adding a field does
not.
"""

from __future__ import annotations

import json
from pathlib import Path

VERIFY_SCHEMA = {"name": "edge-echo-verify", "version": 1}
BENCH_SCHEMA = {"name": "edge-echo-bench", "version": 1}
# (top-level key, what each item must carry) per schema: what report relies on.
_SHAPE = {
    VERIFY_SCHEMA["name"]: ("results", ("model", "runtime", "file", "passed", "max_abs",
                                        "worst_diff_over_allowed", "tolerance")),
    BENCH_SCHEMA["name"]: ("rows", ("model", "runtime", "file", "timing", "floor", "memory")),
}


def load(path: Path, schema: dict) -> tuple[dict | None, str | None]:
    """(document, None), or (None, why it cannot be used) in one line: never raises for a bad
    file, so a report says what it could not include instead of stopping."""
    path = Path(path)
    if path.is_dir():
        return None, f"{path} is a directory, not a results file"
    if not path.is_file():
        return None, f"{path} does not exist"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path} is not readable JSON ({exc})"
    if not isinstance(doc, dict):
        return None, f"{path} is not a JSON object"
    found = doc.get("schema")
    if not isinstance(found, dict) or found.get("name") != schema["name"]:
        return None, (f"{path} is not {schema['name']} JSON (no schema {schema['name']!r}; "
                      "written by an older edge-echo, or by another command)")
    if found.get("version") != schema["version"]:
        return None, (f"{path} has {schema['name']} schema version {found.get('version')!r}; "
                      f"this edge-echo reads version {schema['version']}")
    key, fields = _SHAPE[schema["name"]]
    items = doc.get(key)
    if not isinstance(items, list) or not all(
            isinstance(item, dict) and all(f in item for f in fields) for item in items):
        return None, f"{path}: '{key}' is not a list of entries with {', '.join(fields)}"
    return doc, None


# device.json: what an export measured with the optional tools of the machine that made it (the
# C source's footprint on the host compiler, its figures on emulated Cortex-M cores). Kept out
# of manifest.json so the export's bytes do not depend on which tools are installed; git
# ignores it beside verify.json and bench.json.
DEVICE_SCHEMA = {"name": "edge-echo-device", "version": 1}
DEVICE_FILE = "device.json"  # manifest.DEVICE_FILE (this module imports nothing of edge-echo's)


def device_doc(models: dict[str, dict]) -> dict:
    return {"schema": DEVICE_SCHEMA,
            "about": "measured at export on this machine's tools, per model and file kind; "
                     "each entry names the file and the sha256 it was measured on",
            "models": models}


def load_device(directory: Path) -> dict[str, dict]:
    """device.json's figures per model and kind ({} where there is none or it is unreadable)."""
    path = Path(directory) / DEVICE_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != DEVICE_SCHEMA \
            or not isinstance(doc.get("models"), dict):
        return {}
    return {k: v for k, v in doc["models"].items() if isinstance(v, dict)}


def with_device(manifest: dict, directory: Path) -> dict:
    """The manifest with device.json's figures put back where a reader looks for them (a C
    source's c.footprint and c.cortex_m), for the files whose bytes they were measured on."""
    import copy

    measured = load_device(directory)
    if not measured:
        return manifest
    doc = copy.deepcopy(manifest)
    for name, entry in doc.get("models", {}).items():
        for kind, figures in measured.get(name, {}).items():
            art = entry.get("artifacts", {}).get(kind)
            if not isinstance(art, dict) or not isinstance(figures, dict) \
                    or figures.get("sha256") != art.get("sha256"):
                continue
            target = art.setdefault("c", {}) if "c" in art else art
            target.update({k: v for k, v in figures.items() if k not in ("file", "sha256")})
    return doc
