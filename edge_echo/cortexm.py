"""Cortex-M cores under QEMU: the C source cross-compiled for a core, linked into a small
firmware for the matching qemu-system-arm board, run there, and measured.

The firmware (edge_echo/firmware/: startup.c, harness.c, link.ld.in) reads its input
sequences from a file over semihosting, runs NAME_predict (or NAME_reset, then NAME_step per
time step) on each, and writes the outputs and the SysTick ticks of each call back. QEMU runs
with -icount shift=0: every guest instruction advances the emulated clock by one nanosecond,
so SysTick ticks count instructions. Two calibration loops of exactly 40,000 and 240,000
instructions, timed in the same run, turn ticks into instructions (40 a tick on the MPS2
boards at 25 MHz). These are instructions, not cycles: an estimate in microseconds at the
board's clock assumes one instruction per cycle and is labelled as an estimate.

Tools: arm-none-eabi-gcc with newlib (Debian's gcc-arm-none-eabi, libnewlib-arm-none-eabi)
and qemu-system-arm. Without them every runtime here says so in one line and is skipped.
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ArtifactError, UsageError

FIRMWARE = Path(__file__).with_name("firmware")
GCC, SIZE, NM, QEMU = "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm"
# The model object is built as the embedded engineer would: -Os, strict C99, no
# double promotion (every double operation on a single-precision FPU is a library call).
MODEL_FLAGS = ("-Os", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wdouble-promotion")
SPIN = (20000, 120000)  # the calibration loops of harness.c: 2 instructions an iteration
IN_MAGIC, OUT_MAGIC = 0x4E494545, 0x554F4545
INSTALL = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
METHOD = ("SysTick ticks under qemu -icount shift=0 (one instruction is one emulated "
          "nanosecond), calibrated in the same run against loops of exactly 40,000 and "
          "240,000 instructions; resolution one tick")


@dataclass(frozen=True)
class Core:
    name: str          # cortex-m4: the runtime label's suffix (c@cortex-m4)
    label: str         # Cortex-M4F
    board: str         # the qemu-system-arm machine
    flags: tuple[str, ...]
    float_abi: str     # soft: every float operation is a library call
    flash: tuple[int, int]   # origin, size of the code memory the firmware links into
    ram: tuple[int, int]
    clock_hz: int      # the board's CPU clock (QEMU's), for the labelled estimate only

    @property
    def cflags(self) -> list[str]:
        return [f"-mcpu={self.name}", "-mthumb", *self.flags]


KiB, MiB = 1024, 1024 * 1024
CORES: dict[str, Core] = {c.name: c for c in (
    Core("cortex-m0", "Cortex-M0", "microbit", ("-mfloat-abi=soft",), "soft",
         (0x0, 256 * KiB), (0x20000000, 16 * KiB), 16_000_000),
    Core("cortex-m3", "Cortex-M3", "mps2-an385", ("-mfloat-abi=soft",), "soft",
         (0x0, 4 * MiB), (0x20000000, 4 * MiB), 25_000_000),
    Core("cortex-m4", "Cortex-M4F", "mps2-an386", ("-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
         "hard, fpv4-sp-d16", (0x0, 4 * MiB), (0x20000000, 4 * MiB), 25_000_000),
    Core("cortex-m7", "Cortex-M7", "mps2-an500", ("-mfpu=fpv5-d16", "-mfloat-abi=hard"),
         "hard, fpv5-d16", (0x0, 4 * MiB), (0x20000000, 4 * MiB), 25_000_000),
    # Secure state, as the boards reset: code and data in the secure aliases.
    Core("cortex-m33", "Cortex-M33", "mps2-an505", ("-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"),
         "hard, fpv5-sp-d16", (0x10000000, 4 * MiB), (0x38000000, 2 * MiB), 20_000_000),
    Core("cortex-m55", "Cortex-M55", "mps3-an547", ("-mfloat-abi=hard",), "hard (FPv5 + MVE)",
         (0x10000000, 512 * KiB), (0x30000000, 512 * KiB), 32_000_000),
)}
CORE_NAMES = tuple(CORES)


def unavailable() -> str | None:
    """Why no Cortex-M runtime can run here, or None."""
    missing = [tool for tool in (GCC, SIZE, NM, QEMU) if shutil.which(tool) is None]
    if missing:
        return (f"no {' or '.join(missing)} here, so the C source was not run on emulated "
                f"Cortex-M cores (Debian: {INSTALL})")
    return None


def parse_targets(values: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """--targets: core names (cortex-m4 or m4), comma-separated or repeated, 'all' or 'none'."""
    words = [w.strip().lower() for item in values or ["all"] for w in item.split(",") if w.strip()]
    if not words:
        raise UsageError(f"--targets is empty; choose from {', '.join(CORES)}, all or none")
    if words == ["none"]:
        return ()
    chosen: list[str] = []
    for word in words:
        if word == "all":
            chosen += [c for c in CORES if c not in chosen]
            continue
        name = word if word.startswith("cortex-") else f"cortex-{word}"
        if name not in CORES:
            raise UsageError(f"--targets: unknown core {word!r}; choose from "
                             f"{', '.join(CORES)}, all or none")
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


@functools.cache
def toolchain() -> dict:
    """The versions that built and ran the firmware (recorded beside every figure)."""
    def first(cmd):
        out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()
        return out[0] if out else "?"

    return {"compiler": first([GCC, "--version"]), "emulator": first([QEMU, "--version"]),
            "libc": "newlib-nano (--specs=nano.specs)"}


def _run(cmd: list[str], cwd: Path, what: str, timeout: float | None = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "no message")
        raise ArtifactError(f"{what}: {why}")
    return done


def _deepest_stack(entries: list[str], ci: Path) -> int:
    """The deepest chain of stack frames from any public function (-fcallgraph-info=su), the
    library's frames (memset, memcpy) not counted."""
    text = ci.read_text()
    frames = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'node: \{ title: "([^"]+)" label: "[^"]*?\\n[^"]*?\\n(\d+) bytes', text)}
    edges: dict[str, list[str]] = {}
    for m in re.finditer(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', text):
        edges.setdefault(m.group(1), []).append(m.group(2))

    @functools.cache
    def depth(fn: str) -> int:
        return frames.get(fn, 0) + max((depth(g) for g in edges.get(fn, []) if g != fn), default=0)

    return max((depth(e) for e in entries if e in frames), default=max(frames.values(), default=0))


def object_footprint(obj: Path, prefix: str) -> dict:
    """Flash (.text + .rodata + .data), RAM the object keeps (.data + .bss), the deepest stack,
    and the undefined symbols (nm -u): what the model object asks of the libraries. obj was
    compiled with -fstack-usage -fcallgraph-info=su, its .ci file beside it."""
    work = obj.parent
    sections = _run([SIZE, "-A", str(obj)], work, "size").stdout
    sizes: dict[str, int] = {}
    for line in sections.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            key = parts[0].split(".")[1] if parts[0].count(".") > 1 else parts[0][1:]
            sizes[key] = sizes.get(key, 0) + int(parts[1])
    undefined = sorted(set(_run([NM, "-u", str(obj)], work, "nm").stdout.split()) - {"U"})
    stack = _deepest_stack([f"{prefix}_{f}" for f in ("predict", "step", "reset")],
                           obj.with_suffix(".ci"))
    text, rodata, data, bss = (sizes.get(k, 0) for k in ("text", "rodata", "data", "bss"))
    return {"flash_bytes": text + rodata + data, "text_bytes": text, "rodata_bytes": rodata,
            "ram_bytes": data + bss, "stack_bytes": stack, "undefined": undefined}


class Firmware:
    """One model's verify firmware for one core, built once and run as often as asked."""

    def __init__(self, core: Core, c_path: Path, prefix: str, call: str | None = None):
        self.core = core
        # A whole-sequence model's ee_call.h (whole_call): NAME_predict alone, one block.
        self.whole = call is not None
        self._tmp = tempfile.TemporaryDirectory(prefix=f"edge-echo-{core.name}-")
        self.work = Path(self._tmp.name)
        h_path = c_path.with_suffix(".h")
        for src in (c_path, h_path):
            if not src.is_file():
                raise ArtifactError(f"{src.name}: no such file beside {c_path.name}")
            shutil.copy(src, self.work / src.name)
        for src in FIRMWARE.glob("*.[ch]"):
            shutil.copy(src, self.work / src.name)
        (self.work / "link.ld").write_text(linker_script(core))
        harness = ["-Os", "-std=c99", f'-DEE_MODEL_H="{h_path.name}"', f"-DEE_PREFIX={prefix}",
                   f"-DEE_UPPER={prefix.upper()}"]
        if call is not None:
            (self.work / "ee_call.h").write_text(call)
            harness.append('-DEE_CALL_H="ee_call.h"')
        model = self.work / c_path.name
        # The model object keeps its stack usage and call graph beside it (model.su, model.ci),
        # which footprint reads: the flash and stack figures are of the object that runs.
        self.model_obj = self.work / "model.o"
        objs = []
        for src, obj, flags in (
                (model, self.model_obj, (*MODEL_FLAGS, "-fstack-usage", "-fcallgraph-info=su")),
                (self.work / "startup.c", self.work / "startup.o", ("-Os", "-std=c99")),
                (self.work / "harness.c", self.work / "harness.o", tuple(harness))):
            what = (f"{c_path.name} does not compile for {core.name} with {' '.join(MODEL_FLAGS)}"
                    if src == model else f"{c_path.name} does not build for {core.name}")
            _run([GCC, *core.cflags, *flags, "-ffunction-sections", "-c", str(src), "-o", str(obj)],
                 self.work, what)
            objs.append(str(obj))
        self.prefix = prefix
        self.elf = self.work / "firmware.elf"
        # libm stays on the line so that a source that still calls it links; nm -u of the
        # model object (footprint) shows whether it does.
        _run([GCC, *core.cflags, "-nostartfiles", "-T", "link.ld", "--specs=nano.specs",
              "-Wl,--gc-sections", *objs, "-lm", "-o", str(self.elf)], self.work,
             f"{c_path.name} does not fit {core.board} ({core.label}: "
             f"{core.flash[1] // KiB} KiB flash, {core.ram[1] // KiB} KiB RAM)")
        self.lock = threading.Lock()
        # Outputs by (input digest, step): one emulator run answers both APIs, so c@ and
        # c-step@ of a core (and a second ask for the same sequences) share it.
        self._done: dict[tuple[str, bool], tuple[np.ndarray, dict]] = {}

    @functools.cached_property
    def footprint(self) -> dict:
        return object_footprint(self.model_obj, self.prefix)

    def close(self) -> None:
        self._tmp.cleanup()

    def run(self, xs: np.ndarray, step: bool, y_size: int, timeout: float = 900) -> tuple[np.ndarray, dict]:
        """xs: (count, STEPS x FEATURES) float32. The outputs (count, y_size) through
        NAME_predict (step False) or NAME_reset then NAME_step per time step (step True), and
        the figures: instructions per call (predict) or per sequence of steps, and the largest
        one step. One emulator run gives both APIs' outputs, kept for the next ask of the same
        sequences."""
        xs = np.ascontiguousarray(xs, np.float32).reshape(len(xs), -1)
        key = hashlib.sha256(xs.astype("<f4").tobytes()).hexdigest()
        if step and self.whole:
            raise ArtifactError("a whole-sequence model has no step function to run")
        modes = (False,) if self.whole else (False, True)
        with self.lock:
            if (key, step) not in self._done:
                for mode, result in zip(modes, self._emulate(xs, y_size, timeout, len(modes)),
                                        strict=True):
                    self._done[(key, mode)] = result
                while len(self._done) > 64:  # the oldest first
                    del self._done[next(iter(self._done))]
            ys, figures = self._done[(key, step)]
        return ys.copy(), figures

    def _emulate(self, xs: np.ndarray, y_size: int, timeout: float,
                 blocks: int = 2) -> list[tuple[np.ndarray, dict]]:
        (self.work / "in.bin").write_bytes(
            np.array([IN_MAGIC, len(xs)], "<u4").tobytes() + xs.astype("<f4").tobytes())
        out = self.work / "out.bin"
        out.unlink(missing_ok=True)
        cmd = [QEMU, "-M", self.core.board, "-nographic", "-monitor", "none", "-serial", "none",
               "-semihosting-config", "enable=on,target=native", "-icount", "shift=0,align=off",
               "-kernel", str(self.elf)]
        try:
            done = subprocess.run(cmd, cwd=self.work, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ArtifactError(f"{self.core.board} ({self.core.name}) did not finish in "
                                f"{timeout:.0f} s") from None
        said = " ".join((done.stdout + done.stderr).split())
        if done.returncode != 0 or not out.is_file():
            raise ArtifactError(f"the firmware on {self.core.board} ({self.core.name}) failed "
                                f"(exit {done.returncode}): {said or 'no message'}")
        raw = out.read_bytes()
        per = y_size + 2
        expected = 16 + blocks * 4 * per * len(xs)
        head = np.frombuffer(raw[:16], "<u4")
        if len(raw) != expected or head[0] != OUT_MAGIC or head[1] != len(xs):
            raise ArtifactError(f"the firmware on {self.core.board} wrote {len(raw)} bytes, not the "
                                f"{expected} expected")
        per_tick = 2 * (SPIN[1] - SPIN[0]) / float(head[3] - head[2])
        results = []
        for mode in range(blocks):  # NAME_predict's block, then NAME_step's
            body = raw[16 + mode * 4 * per * len(xs):16 + (mode + 1) * 4 * per * len(xs)]
            ys = np.frombuffer(body, "<f4").reshape(len(xs), per)[:, :y_size].copy()
            ticks = np.frombuffer(body, "<u4").reshape(len(xs), per)[:, y_size:].astype(np.int64)
            figures = {"instructions_per_tick": per_tick,
                       "instructions": np.rint(ticks[:, 0] * per_tick).astype(np.int64)}
            if self.whole:  # predict's status per sequence (uint32 of 0 or -1)
                figures["status"] = ticks[:, 1].astype(np.uint32).astype(np.int32)
            else:
                figures["largest_step"] = np.rint(ticks[:, 1] * per_tick).astype(np.int64)
            results.append((ys, figures))
        return results


def linker_script(core: Core) -> str:
    return (FIRMWARE / "link.ld.in").read_text().format(
        board=core.board, core=core.name, flash=core.flash[0], flash_size=core.flash[1],
        ram=core.ram[0], ram_size=core.ram[1])


_BUILT: dict[tuple[str, str], Firmware] = {}
_BUILDING: dict[tuple[str, str], threading.Lock] = {}
_BUILT_LOCK = threading.Lock()


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


def firmware(core_name: str, c_path: Path, prefix: str, call: str | None = None) -> Firmware:
    """The firmware for this source on this core: built once per process (c@ and c-step@ of a
    core share it), keyed by the source's bytes. Different cores build side by side."""
    digest = hashlib.sha256((c_path.read_bytes() + c_path.with_suffix(".h").read_bytes()
                             if c_path.with_suffix(".h").is_file() else c_path.read_bytes())
                            + (call or "").encode()).hexdigest()
    key = (core_name, digest)
    with _BUILT_LOCK:
        lock = _BUILDING.setdefault(key, threading.Lock())
    with lock:
        if key not in _BUILT:
            _BUILT[key] = Firmware(CORES[core_name], c_path, prefix, call)
        return _BUILT[key]


def measure_core(core_name: str, c_path: Path, contract: dict, x: np.ndarray) -> dict:
    """Flash, stack, state and instructions on one core for one sequence x (for a
    whole-sequence model, its inputs packed as pack() packs them; NAME_predict alone)."""
    core = CORES[core_name]
    prefix = contract["prefix"]
    whole_model = contract.get("mode") == "whole_sequence"
    if whole_model:
        y_size = int(contract["y_size"])
        fw = firmware(core_name, c_path, prefix, whole_call(contract))
    else:
        steps = int(contract["steps"])
        y_size = int(contract["outputs"]) * (steps if contract["sequence_output"] == "every_step"
                                             else 1)
        fw = firmware(core_name, c_path, prefix)
    fp = fw.footprint
    _, whole = fw.run(x.reshape(1, -1), step=False, y_size=y_size)
    if whole_model and int(whole["status"][0]) != 0:
        raise ArtifactError(f"{prefix}_predict returned {int(whole['status'][0])}")
    per_sequence = int(whole["instructions"][0])
    figures = {
        "board": core.board, "float_abi": core.float_abi,
        "flags": " ".join([*core.cflags, *MODEL_FLAGS]),
        **{k: v for k, v in fp.items() if k != "undefined"},
        "library_calls": fp["undefined"],
        "state_bytes": int(contract["state_bytes"]),
        "instructions_per_sequence": per_sequence,
    }
    if not whole_model:
        _, stepped = fw.run(x.reshape(1, -1), step=True, y_size=y_size)
        figures["instructions_per_step"] = {
            "mean": int(round(int(stepped["instructions"][0]) / steps)),
            "largest": int(stepped["largest_step"][0])}
    return {**figures, "instructions_per_tick": round(whole["instructions_per_tick"], 3),
            "clock_hz": core.clock_hz,
            "estimate_us_at_clock": round(per_sequence / core.clock_hz * 1e6, 1)}


def measure(c_path: Path, contract: dict, x: np.ndarray, cores: tuple[str, ...] = CORE_NAMES) -> dict:
    """Every core's figures for the manifest (and bench), or why they were not measured."""
    why = unavailable()
    if why:
        return {"measured": f"not measured: {why}"}
    x = np.ascontiguousarray(x, np.float32).ravel()

    def one(core: str) -> dict:
        try:
            return measure_core(core, c_path, contract, x)
        except ArtifactError as exc:  # e.g. a model that does not fit the micro:bit's 16 KiB
            return {"board": CORES[core].board, "measured": f"not measured: {exc}"}

    with ThreadPoolExecutor(max_workers=3) as pool:
        figures = dict(zip(cores, pool.map(one, cores), strict=True))
    return {"method": METHOD,
            "estimate": "estimate_us_at_clock = instructions / clock: an estimate that assumes one "
                        "instruction a cycle at the board's clock (no wait states, no stalls)",
            **toolchain(), "cores": figures}
