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
    models = manifest.get("models")
    if not isinstance(models, dict) or not models:
        raise ArtifactError(f"{path}: no models listed")
    for name, model in models.items():
        for key in ("spec", "inputs", "outputs", "artifacts", "tolerances"):
            if not isinstance(model, dict) or key not in model:
                raise ArtifactError(f"{path}: model {name!r} lacks '{key}'")
        for kind, art in model["artifacts"].items():
            if not isinstance(art, dict) or not all(k in art for k in ("file", "sha256", "size")):
                raise ArtifactError(f"{path}: artifact {name}/{kind} lacks file, size or sha256")
            artifact_path(directory, art)
    return manifest


def artifact_path(directory: Path, artifact: dict) -> Path:
    name = artifact["file"]
    candidate = Path(name)
    if not isinstance(name, str) or candidate.name != name or name in ("", ".", ".."):
        raise ArtifactError(f"manifest names file {name!r}, which is outside the export directory")
    return directory / name


def check_integrity(directory: Path, manifest: dict) -> list[str]:
    """Check every listed file against its size and sha256 before anything loads it."""
    checked = []
    for model in manifest["models"].values():
        for art in model["artifacts"].values():
            path = artifact_path(directory, art)
            if not path.is_file():
                raise ArtifactError(f"{path}: listed in the manifest but missing")
            if path.stat().st_size != art["size"] or sha256_file(path) != art["sha256"]:
                raise ArtifactError(
                    f"{path}: sha256 does not match the manifest (altered or corrupt); not loaded"
                )
            checked.append(art["file"])
    return checked


def listed_files(manifest: dict) -> set[str]:
    return {art["file"] for m in manifest["models"].values() for art in m["artifacts"].values()}
