"""Keras model -> .keras file, the same bytes for the same weights.

model.save writes the wall-clock time into metadata.json and into one zip
entry's timestamp, and memory addresses as shared_object_id into
config.json, so two saves of one model differ. Here the archive is rewritten
with fixed entry times, no date_saved, and shared-object ids renumbered in
order of appearance (their only role is to pair references to one object,
which renumbering keeps). Keras loads the result as any .keras file.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def save_keras(model, path: Path) -> None:
    raw = path.with_name(f".{path.name}.raw.keras")
    try:
        model.save(raw)
        with zipfile.ZipFile(raw) as src:
            entries = [(info.filename, src.read(info)) for info in src.infolist()]
    finally:
        raw.unlink(missing_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as out:
        for name, data in entries:
            if name == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta).encode()
            elif name == "config.json":
                data = json.dumps(_renumber_shared_ids(json.loads(data))).encode()
            out.writestr(zipfile.ZipInfo(name, date_time=_FIXED_TIME), data)
    os.utime(path, None)


def _renumber_shared_ids(config):
    ids: dict[int, int] = {}

    def walk(node):
        if isinstance(node, dict):
            return {k: (ids.setdefault(v, len(ids) + 1) if k == "shared_object_id" else walk(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(config)
