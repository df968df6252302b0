"""What every device target shares: the Target interface, and the Program that one target builds
from one model's C source and runs as often as asked.

A target owns its toolchain and flags (build), its board or loader and how it runs a file of
sequences there (execute), and how it measures footprint and instructions (footprint, and the
counter its harness reads). Every target runs the same verify harness (firmware/harness.c, or
firmware/harness.mjs for WebAssembly) on the same files: in.bin holds the sequences, out.bin
the outputs and the counter's readings around each call (the format is in harness.c). One
Program answers both APIs (NAME_predict, and NAME_reset then NAME_step) in one run.
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..errors import ArtifactError

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
# The calibration loops of harness.c: two instructions an iteration.
SPIN = (20000, 120000)
IN_MAGIC, OUT_MAGIC = 0x4E494545, 0x554F4545
# The model object is built as the embedded engineer would: -Os, strict C99, no double
# promotion (every double operation on a single-precision FPU is a library call).
MODEL_FLAGS = ("-Os", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wdouble-promotion")


class Target:
    """One device target: c@NAME and c-step@NAME run the model's C source there."""

    name = "?"          # the runtime label's suffix: c@cortex-m4, c@riscv32imac, c@wasm32
    family = "?"        # device.json's key for the family's figures: cortex_m, riscv, ...
    label = "?"         # Cortex-M4F
    # The artifact the runtime loads: the C source, or (WebAssembly) the .wasm built from it.
    artifact = "c_source"
    tools: tuple[str, ...] = ()
    install = "?"       # the Debian command that installs the tools
    where = "?"         # the C source was not run on WHERE (one line for the whole family)
    # What the figures count: "instructions" (exact, from the core's own counter or the
    # emulator's), or "time" where nothing counts instructions.
    counts = "instructions"
    method = "?"
    # The figures need a run of their own (aarch64: a traced run); else every run counts.
    count_runs = False

    # A file the compiler must find (-print-file-name): its C library, where that is a package
    # of its own (picolibc, the cross glibc).
    library: str | None = None

    def unavailable(self) -> str | None:
        missing = [t for t in self.tools if shutil.which(t) is None]
        if not missing and self.library and not has_file(self.tools[0], self.library):
            missing = [self.library]
        if missing:
            return (f"no {' or '.join(missing)} here, so the C source was not run on "
                    f"{self.where} (Debian: {self.install})")
        return None

    def toolchain(self) -> dict:
        raise NotImplementedError

    def companions(self, path: Path) -> tuple[Path, ...]:
        """The files the runtime's file needs beside it: a C source's header."""
        return (path.with_suffix(".h"),)

    def build(self, program: Program) -> None:
        """Compile and link program.source into program.work; sets program.binary and
        program.model_obj (the model's own object, which footprint measures)."""
        raise NotImplementedError

    def execute(self, program: Program, timeout: float, count: bool) -> bytes:
        """Run the program on in.bin in program.work; the bytes of out.bin."""
        raise NotImplementedError

    def footprint(self, program: Program) -> dict:
        raise NotImplementedError

    def describe(self) -> dict:
        """What the figures were measured on: board, float ABI, flags, clock."""
        return {}


def run_tool(cmd: list[str], cwd: Path, what: str,
             timeout: float | None = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        why = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "no message")
        raise ArtifactError(f"{what}: {why}")
    return done


@functools.cache
def has_file(compiler: str, name: str) -> bool:
    """The compiler finds name among its libraries (gcc -print-file-name prints it bare if not)."""
    found = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True,
                           text=True).stdout.strip()
    return Path(found).is_absolute() and Path(found).is_file()


def first_line_of(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()
    return out[0] if out else "?"


def deepest_stack(entries: list[str], ci: Path) -> int:
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


def object_footprint(obj: Path, prefix: str, size_tool: str, nm_tool: str) -> dict:
    """Flash (.text + .rodata + .data), RAM the object keeps (.data + .bss), the deepest stack,
    and the undefined symbols (nm -u): what the model object asks of the libraries. obj was
    compiled with -fstack-usage -fcallgraph-info=su, its .ci file beside it."""
    work = obj.parent
    sections = run_tool([size_tool, "-A", str(obj)], work, "size").stdout
    sizes: dict[str, int] = {}
    for line in sections.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(".") and parts[1].isdigit():
            key = parts[0].split(".")[1] if parts[0].count(".") > 1 else parts[0][1:]
            # .srodata/.sdata/.sbss (RISC-V's small data) count as what they hold.
            key = {"srodata": "rodata", "sdata": "data", "sbss": "bss"}.get(key, key)
            sizes[key] = sizes.get(key, 0) + int(parts[1])
    undefined = sorted(set(run_tool([nm_tool, "-u", str(obj)], work, "nm").stdout.split()) - {"U"})
    stack = deepest_stack([f"{prefix}_{f}" for f in ("predict", "step", "reset")],
                          obj.with_suffix(".ci"))
    text, rodata, data, bss = (sizes.get(k, 0) for k in ("text", "rodata", "data", "bss"))
    return {"flash_bytes": text + rodata + data, "text_bytes": text, "rodata_bytes": rodata,
            "ram_bytes": data + bss, "stack_bytes": stack, "undefined": undefined}


def harness_flags(program: Program) -> list[str]:
    """harness.c's defines for this model (firmware/harness.c says what each is)."""
    flags = [f'-DEE_MODEL_H="{program.header.name}"', f"-DEE_PREFIX={program.prefix}",
             f"-DEE_UPPER={program.prefix.upper()}"]
    if program.call is not None:
        flags.append('-DEE_CALL_H="ee_call.h"')
    return flags


class Program:
    """One model's verify program for one target, built once and run as often as asked."""

    def __init__(self, target: Target, source: Path, contract: dict,
                 companions: tuple[Path, ...] = ()):
        from . import whole_call

        self.target = target
        self.contract = contract
        self.prefix = contract["prefix"]
        self.whole = contract.get("mode") == "whole_sequence"
        # A whole-sequence model's ee_call.h (whole_call): NAME_predict alone, one block.
        self.call = whole_call(contract) if self.whole else None
        self._tmp = tempfile.TemporaryDirectory(prefix=f"edge-echo-{target.name}-")
        self.work = Path(self._tmp.name)
        for src in (source, *companions):
            if not src.is_file():
                raise ArtifactError(f"{src.name}: no such file beside {source.name}")
            shutil.copy(src, self.work / src.name)
        self.source = self.work / source.name
        self.header = self.source.with_suffix(".h")
        if self.call is not None:
            (self.work / "ee_call.h").write_text(self.call)
        self.binary: Path | None = None
        self.model_obj: Path | None = None
        target.build(self)
        self.lock = threading.Lock()
        # Outputs by (input digest, step, counted): one run answers both APIs, so c@ and
        # c-step@ of a target (and a second ask for the same sequences) share it.
        self._done: dict[tuple[str, bool, bool], tuple[np.ndarray, dict]] = {}

    def copy_firmware(self, *names: str) -> None:
        for name in names:
            shutil.copy(FIRMWARE / name, self.work / name)

    @functools.cached_property
    def footprint(self) -> dict:
        return self.target.footprint(self)

    def close(self) -> None:
        self._tmp.cleanup()

    def run(self, xs: np.ndarray, step: bool, y_size: int, timeout: float = 900,
            count: bool = False) -> tuple[np.ndarray, dict]:
        """xs: (count, words a sequence) float32. The outputs (count, y_size) through
        NAME_predict (step False) or NAME_reset then NAME_step per time step (step True), and
        the figures: instructions per call (predict) or per sequence of steps, and the largest
        one step, where the target counts them (count: also where that takes a run of its own)."""
        xs = np.ascontiguousarray(xs, np.float32).reshape(len(xs), -1)
        key = hashlib.sha256(xs.astype("<f4").tobytes()).hexdigest()
        if step and self.whole:
            raise ArtifactError("a whole-sequence model has no step function to run")
        counted = count or not self.target.count_runs
        modes = (False,) if self.whole else (False, True)
        with self.lock:
            if (key, step, counted) not in self._done and (key, step, True) not in self._done:
                raw = self._execute(xs, timeout, counted)
                for mode, result in zip(modes, self._parse(raw, len(xs), y_size, len(modes), counted),
                                        strict=True):
                    self._done[(key, mode, counted)] = result
                while len(self._done) > 64:  # the oldest first
                    del self._done[next(iter(self._done))]
            found = self._done.get((key, step, counted)) or self._done[(key, step, True)]
        ys, figures = found
        return ys.copy(), figures

    def _execute(self, xs: np.ndarray, timeout: float, counted: bool) -> bytes:
        (self.work / "in.bin").write_bytes(
            np.array([IN_MAGIC, len(xs)], "<u4").tobytes() + xs.astype("<f4").tobytes())
        (self.work / "out.bin").unlink(missing_ok=True)
        return self.target.execute(self, timeout, counted)

    def _parse(self, raw: bytes, n: int, y_size: int, blocks: int,
               counted: bool) -> list[tuple[np.ndarray, dict]]:
        where = f"{self.target.label} ({self.target.name})"
        per = y_size + 2
        expected = 16 + blocks * 4 * per * n
        head = np.frombuffer(raw[:16], "<u4")
        if len(raw) != expected or head[0] != OUT_MAGIC or head[1] != n:
            raise ArtifactError(f"the program on {where} wrote {len(raw)} bytes, not the "
                                f"{expected} expected")
        instructions = counted and self.target.counts == "instructions"
        per_tick = 2 * (SPIN[1] - SPIN[0]) / float(head[3] - head[2]) if instructions else None
        results = []
        for mode in range(blocks):  # NAME_predict's block, then NAME_step's
            body = raw[16 + mode * 4 * per * n:16 + (mode + 1) * 4 * per * n]
            ys = np.frombuffer(body, "<f4").reshape(n, per)[:, :y_size].copy()
            ticks = np.frombuffer(body, "<u4").reshape(n, per)[:, y_size:].astype(np.int64)
            figures: dict = {}
            if per_tick is not None:
                figures = {"instructions_per_tick": per_tick,
                           "instructions": np.rint(ticks[:, 0] * per_tick).astype(np.int64)}
            if self.whole:  # predict's status per sequence (uint32 of 0 or -1)
                figures["status"] = ticks[:, 1].astype(np.uint32).astype(np.int32)
            elif per_tick is not None:
                figures["largest_step"] = np.rint(ticks[:, 1] * per_tick).astype(np.int64)
            results.append((ys, figures))
        return results


def call_error(where: str, done: subprocess.CompletedProcess) -> ArtifactError:
    said = " ".join((done.stdout + done.stderr).split())[-300:]
    return ArtifactError(f"the program on {where} failed (exit {done.returncode}): "
                         f"{said or 'no message'}")


def compile_harness(program: Program, gcc: str, cflags: list[str], platform: str,
                    target: str, extra: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> list[str]:
    """Compile the model (MODEL_FLAGS, keeping its stack usage and call graph beside it, which
    footprint reads: the figures are of the object that runs), the platform file, any extra
    sources (name, flags) and the harness into program.work; the objects, in link order."""
    work, name = program.work, program.source.name
    program.copy_firmware("platform.h", platform, "harness.c", *(src for src, _ in extra))
    program.model_obj = work / "model.o"
    objs = []
    for src, obj, flags in (
            (program.source, program.model_obj,
             (*MODEL_FLAGS, "-fstack-usage", "-fcallgraph-info=su")),
            *((work / src, work / Path(src).with_suffix(".o").name, ("-Os", "-std=c99", *flags))
              for src, flags in extra),
            (work / platform, work / "platform.o", ("-Os", "-std=c99")),
            (work / "harness.c", work / "harness.o", ("-Os", "-std=c99", *harness_flags(program)))):
        what = (f"{name} does not compile for {target} with {' '.join(MODEL_FLAGS)}"
                if src == program.source else f"{name} does not build for {target}")
        run_tool([gcc, *cflags, *flags, "-ffunction-sections", "-c", str(src), "-o", str(obj)],
                 work, what)
        objs.append(str(obj))
    return objs


def run_for_output(program: Program, cmd: list[str], where: str, timeout: float) -> bytes:
    """Run cmd in the program's directory: the bytes of the out.bin it writes, or one line."""
    try:
        done = subprocess.run(cmd, cwd=program.work, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"{where} did not finish in {timeout:.0f} s") from None
    out = program.work / "out.bin"
    if done.returncode != 0 or not out.is_file():
        raise call_error(where, done)
    return out.read_bytes()


def toolchain_of(compiler: str, emulator: str, libc: str) -> dict:
    """The versions that built and ran a target's programs (recorded beside every figure)."""
    return {"compiler": first_line_of([compiler, "--version"]),
            "emulator": first_line_of([emulator, "--version"]), "libc": libc}
