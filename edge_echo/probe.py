"""Load and run model files in a child process, so a runtime that crashes on one cannot take us down.

ONNX Runtime and LiteRT are native code: a truncated, mutated or unlucky
file can make them abort or segfault (ONNX Runtime 1.32 segfaults optimizing
a float16 Transpose that its own float16 converter writes). One child loads
each file in turn and runs it once on zeros, announcing each file before it
starts; when the child dies, the parent knows which file killed it, reports
it in one line, and starts a new child for the rest.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

_CHILD = """
import sys
import numpy as np
from edge_echo.device import open_runner
from edge_echo.errors import first_line
from edge_echo.runners.tflm import TFLMRunner
for item in sys.argv[1:]:
    print("BEGIN", item, flush=True)
    try:
        kind, _, rest = item.partition(":")
        if kind == "tflm":  # tflm:ARENA:PATH, on TFLM with the arena its manifest declares
            arena, _, path = rest.partition(":")
            runner = TFLMRunner(path, None, None, artifact={"micro": {"arena_bytes": int(arena)}})
            runner.__enter__()
        elif kind == "compiled":  # compiled:PATH, through LiteRT's CompiledModel API
            from edge_echo.runners.litert_compiled import LiteRTCompiledRunner
            runner = LiteRTCompiledRunner(rest, None, None)
            runner.__enter__()
        else:  # file:PATH, on the runtime its suffix names
            runner = open_runner(rest, probe_first=False)
        try:
            # Zeros of each input's own dtype (0 is a token id too), looked up by the file's names.
            dtypes = runner.input_dtypes or [np.float32] * len(runner.input_names)
            runner.infer({n: np.zeros([1 if d is None else d for d in s], t)
                          for n, s, t in zip(runner.input_names, runner.file_inputs, dtypes)})
        finally:
            runner.__exit__(None, None, None)
    except BaseException as exc:
        print("ERROR", first_line(exc), flush=True)
        continue
    print("OK", flush=True)
"""


def tflm_item(path: Path, arena: int) -> str:
    """A probe_many item that loads path on TFLM in an arena of that many bytes."""
    return f"tflm:{int(arena)}:{path}"


def compiled_item(path: Path) -> str:
    """A probe_many item that loads and runs path through LiteRT's CompiledModel API."""
    return f"compiled:{path}"


def item_path(item: Path | str) -> tuple[Path, str]:
    """The file a probe_many item loads, and where: '' (its suffix's runtime), ' on TFLM', or
    " through LiteRT's CompiledModel"."""
    if not isinstance(item, str):
        return Path(item), ""
    kind, _, rest = item.partition(":")
    if kind == "tflm":
        return Path(rest.partition(":")[2]), " on TFLM"
    return Path(rest), " through LiteRT's CompiledModel" if kind == "compiled" else ""


def _arg(item: Path | str) -> str:
    """The child's argument: every item says its kind, so a path never reads as a TFLM item."""
    return item if isinstance(item, str) else f"file:{item}"


def in_children(script: str, items: list[str], timeout: float = 300,
                doing: str = "loading") -> dict[str, tuple[bool, str]]:
    """Run script (python -c) on items, one child for all of them: the child prints "BEGIN
    item" before each, then "OK rest" or "ERROR why". Per item (True, rest) or (False, why in
    one line); an item the child died in is reported as such, and a new child takes the rest."""
    results: dict[str, tuple[bool, str]] = {}
    pending = list(items)
    while pending:
        try:
            done = subprocess.run([sys.executable, "-c", script, *pending],
                                  capture_output=True, text=True, timeout=timeout)
            stdout, code = done.stdout, done.returncode
        except subprocess.TimeoutExpired as exc:
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            code = None
        current = None
        for line in stdout.splitlines():
            word, _, rest = line.partition(" ")
            if word == "BEGIN":
                current = rest if rest in pending else None
            elif word in ("OK", "ERROR") and current is not None:
                results[current] = (word == "OK", rest)
                current = None
        if current is not None:  # the child died inside this item
            if code is None:
                why = f"the runtime did not finish {doing} it within {timeout:.0f} s"
            elif code < 0:
                why = f"the runtime crashed ({signal.Signals(-code).name}) {doing} it"
            else:
                why = f"the runtime exited with code {code} {doing} it"
            results[current] = (False, why)
        elif code not in (0, None) and not results:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"the probe process failed: {last}")
        pending = [p for p in pending if p not in results]
    return results


def probe_many(paths: list[Path | str], timeout: float = 300) -> dict[Path | str, str | None]:
    """For each file (or tflm_item): None if it loads and runs, else why not, in one line."""
    items = [p if isinstance(p, str) else Path(p) for p in paths]
    found = in_children(_CHILD, [_arg(p) for p in items], timeout)
    return {p: (None if found[_arg(p)][0] else found[_arg(p)][1]) for p in items}


def probe(path: Path, timeout: float = 300) -> str | None:
    return probe_many([path], timeout)[Path(path)]


def check_loadable(directory: Path, doc: dict) -> None:
    """Every TFLite and ONNX file of an export must load and run in a child first."""
    from . import manifest
    from .errors import ArtifactError

    arts = [art for model in doc["models"].values() for art in model["artifacts"].values()
            if art.get("format") in ("tflite", "onnx", "ort")]
    files: list[Path | str] = [manifest.artifact_path(directory, art) for art in arts]
    # A micro file also runs on TFLM, in the arena its manifest declares (a wrong one crashes);
    # a stateless .tflite through LiteRT's CompiledModel API too (native code of its own).
    files += [tflm_item(manifest.artifact_path(directory, art), _arena(art)) for art in arts
              if isinstance(art.get("micro"), dict)]
    files += [compiled_item(manifest.artifact_path(directory, art)) for art in arts
              if art.get("format") == "tflite" and not isinstance(art.get("micro"), dict)]
    failed = [(item, why) for item, why in probe_many(files).items() if why]
    if failed:
        item, why = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        path, on = item_path(item)
        reason = why if why.startswith(path.name) else f"{path.name}{on}: {why}"
        raise ArtifactError(f"{reason}; not loaded here{more}")


def _arena(art: dict) -> int:
    from .errors import ArtifactError

    arena = art["micro"].get("arena_bytes")
    if not isinstance(arena, int) or isinstance(arena, bool) or not 0 < arena <= 1 << 30:
        raise ArtifactError(f"{art['file']}: the manifest's micro arena_bytes {arena!r} is not a "
                            "size in bytes")
    return arena
