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
