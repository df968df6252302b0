"""Device targets: where the C source runs besides the host, one module per family.

A target (base.Target) owns its toolchain and flags, its board or loader, how it runs a file of
sequences, and how it measures footprint and instructions (or time). The runtimes c@NAME and
c-step@NAME (runners/target.py) run every target here; verify and bench pick them with
--targets; the export's device.json holds each family's figures (measure). Adding a target
is adding one module here, listed in FAMILIES, and a test.

    cortexm   c@cortex-m0 ... c@cortex-m55   qemu-system-arm, SysTick under -icount
    riscv     c@riscv32imac, c@riscv32imafc  qemu-system-riscv32 (virt), minstret
    aarch64   c@aarch64                      qemu-aarch64 (Linux user mode), traced
    wasm      c@wasm32                       NAME.wasm through NAME.mjs in Node, timed
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import ArtifactError, UsageError
from . import aarch64, cortexm, riscv, wasm
from .base import Program, Target

FAMILIES = (cortexm, riscv, aarch64, wasm)
TARGETS: dict[str, Target] = {t.name: t for family in FAMILIES for t in family.TARGETS}
TARGET_NAMES = tuple(TARGETS)
# --targets takes a family's name for all its targets, and short names for one.
GROUPS = {"cortex-m": tuple(cortexm.CORES), "riscv": ("riscv32imac", "riscv32imafc"),
          "riscv32": ("riscv32imac", "riscv32imafc")}
ALIASES = {**{name.removeprefix("cortex-"): name for name in cortexm.CORES},
           "rv32imac": "riscv32imac", "rv32imafc": "riscv32imafc", "arm64": "aarch64",
           "wasm": "wasm32"}


def unavailable(name: str) -> str | None:
    """Why target name cannot run here, or None."""
    return TARGETS[name].unavailable()


def parse_targets(values: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """--targets: target names (cortex-m4 or m4, riscv32imac, aarch64, wasm32) or families
    (cortex-m, riscv), comma-separated or repeated, 'all' or 'none'."""
    words = [w.strip().lower() for item in values or ["all"] for w in item.split(",") if w.strip()]
    choices = f"{', '.join(TARGETS)}, {', '.join(GROUPS)}, all or none"
    if not words:
        raise UsageError(f"--targets is empty; choose from {choices}")
    if words == ["none"]:
        return ()
    chosen: list[str] = []
    for word in words:
        names = (TARGET_NAMES if word == "all" else GROUPS.get(word)
                 or ((ALIASES.get(word, word),) if ALIASES.get(word, word) in TARGETS else None))
        if names is None:
            raise UsageError(f"--targets: unknown target {word!r}; choose from {choices}")
        chosen += [n for n in names if n not in chosen]
    return tuple(chosen)


def whole_call(contract: dict) -> str:
    """ee_call.h for a whole-sequence model's harness: the words a sequence takes (its inputs
    in order, each float32 or int32) and NAME_predict on them, as an expression of its status."""
    offset, args = 0, []
    for spec in contract["inputs"]:
        ctype = "const int32_t *" if spec["dtype"] == "int32" else "const float *"
        args.append(f"({ctype})(const void *)((x) + {offset})")
        offset += int(np.prod(spec["shape"]))
    call = f"{contract['prefix']}_predict({', '.join(args)}, (y))"
    if not contract["returns"].startswith("int"):
        call = f"({call}, 0)"
    return f"#define EE_WORDS {offset}\n#define EE_CALL(x, y) {call}\n"


def pack(contract: dict, arrays: list[np.ndarray]) -> np.ndarray:
    """Sequences of a whole-sequence model's inputs as the harness reads them: per sequence,
    each input's values in order, token ids as int32 bit patterns; (count, words) float32."""
    count = len(arrays[0])
    rows = []
    for spec, a in zip(contract["inputs"], arrays, strict=True):
        a = np.asarray(a).reshape(count, -1)
        if a.shape[1] != int(np.prod(spec["shape"])):
            raise ArtifactError(f"input '{spec['name']}' takes {int(np.prod(spec['shape']))} "
                                f"values a sequence, got {a.shape[1]}")
        rows.append(np.ascontiguousarray(a, "<i4").view("<f4") if spec["dtype"] == "int32"
                    else np.ascontiguousarray(a, "<f4"))
    return np.concatenate(rows, axis=1)


def y_size(contract: dict) -> int:
    if contract.get("mode") == "whole_sequence":
        return int(contract["y_size"])
    every = contract["sequence_output"] == "every_step"
    return int(contract["outputs"]) * (int(contract["steps"]) if every else 1)


_BUILT: dict[tuple[str, str], Program] = {}
_BUILDING: dict[tuple[str, str], threading.Lock] = {}
_BUILT_LOCK = threading.Lock()


def program(name: str, path: Path, contract: dict) -> Program:
    """The program for this file on this target: built once per process (c@ and c-step@ of a
    target share it), keyed by the bytes it is built from. Different targets build side by side."""
    target = TARGETS[name]
    companions = target.companions(path)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in (path, *companions) if p.is_file())
                            + repr(sorted(contract.items())).encode()).hexdigest()
    key = (name, digest)
    with _BUILT_LOCK:
        lock = _BUILDING.setdefault(key, threading.Lock())
    with lock:
        if key not in _BUILT:
            _BUILT[key] = Program(target, path, contract, companions)
        return _BUILT[key]


def measure_one(name: str, path: Path, contract: dict, x: np.ndarray,
                timed: tuple[int, int] | None = None) -> dict:
    """Footprint, state and instructions on one target for one sequence x (for a whole-sequence
    model, its inputs packed as pack() packs them). A target that counts nothing (Node) is run
    once, and timed only where asked (timed: bench's runs and warm-up calls; device.json keeps
    what repeats exactly)."""
    target = TARGETS[name]
    prog = program(name, path, contract)
    whole_model = prog.whole
    size = y_size(contract)
    fp = prog.footprint
    figures = {**target.describe(), **{k: v for k, v in fp.items() if k != "undefined"}}
    if "undefined" in fp:
        figures["library_calls"] = fp["undefined"]
    figures["state_bytes"] = int(contract["state_bytes"])
    if target.counts == "time":
        _, whole = prog.run(x.reshape(1, -1), step=False, y_size=size)
        if whole_model and int(whole["status"][0]) != 0:
            raise ArtifactError(f"{prog.prefix}_predict returned {int(whole['status'][0])}")
        return {**figures, **(target.time(prog, x, *timed) if timed else {})}
    _, whole = prog.run(x.reshape(1, -1), step=False, y_size=size, count=True)
    if whole_model and int(whole["status"][0]) != 0:
        raise ArtifactError(f"{prog.prefix}_predict returned {int(whole['status'][0])}")
    per_sequence = int(whole["instructions"][0])
    figures["instructions_per_sequence"] = per_sequence
    if not whole_model:
        _, stepped = prog.run(x.reshape(1, -1), step=True, y_size=size, count=True)
        steps = int(contract["steps"])
        figures["instructions_per_step"] = {
            "mean": int(round(int(stepped["instructions"][0]) / steps)),
            "largest": int(stepped["largest_step"][0])}
    figures["instructions_per_tick"] = round(whole["instructions_per_tick"], 3)
    clock = figures.get("clock_hz")
    if clock:
        figures["estimate_us_at_clock"] = round(per_sequence / clock * 1e6, 1)
    return figures


ESTIMATE = ("estimate_us_at_clock = instructions / clock: an estimate that assumes one "
            "instruction a cycle at the board's clock (no wait states, no stalls)")


def measure(path: Path, contract: dict, x: np.ndarray, names: tuple[str, ...] | None = None,
            artifact: str = "c_source", timed: tuple[int, int] | None = None) -> dict:
    """Every family's figures for device.json (and bench), keyed by family (cortex_m, riscv,
    aarch64, wasm), each with its method and toolchain and its targets' figures under "cores",
    or why they were not measured. Only the targets that run this artifact."""
    names = tuple(n for n in (TARGET_NAMES if names is None else names)
                  if TARGETS[n].artifact == artifact)
    x = np.ascontiguousarray(x, np.float32).ravel()
    families: dict[str, dict] = {}
    runnable = []
    for n in names:
        target = TARGETS[n]
        why = target.unavailable()
        family = families.setdefault(target.family, {})
        if why:
            family.setdefault("measured", f"not measured: {why}")
            continue
        if not family:
            family.update({"method": target.method,
                           **({"estimate": ESTIMATE} if target.family == "cortex_m" else {}),
                           **target.toolchain(), "cores": {}})
        runnable.append(n)

    def one(n: str) -> dict:
        try:
            return measure_one(n, path, contract, x, timed)
        except ArtifactError as exc:  # e.g. a model that does not fit the micro:bit's 16 KiB
            return {"board": TARGETS[n].describe()["board"], "measured": f"not measured: {exc}"}

    with ThreadPoolExecutor(max_workers=3) as pool:
        for n, figures in zip(runnable, pool.map(one, runnable), strict=True):
            families[TARGETS[n].family]["cores"][n] = figures
    return families


__all__ = ["FAMILIES", "TARGETS", "TARGET_NAMES", "Program", "Target", "measure", "pack",
           "parse_targets", "program", "unavailable", "whole_call"]
