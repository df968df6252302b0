"""64-bit Arm Linux gateways (Raspberry Pi class): the C source built by aarch64-linux-gnu-gcc,
linked statically against the cross glibc, and run under qemu-aarch64 (user mode).

NEON comes through the compiler's vector types, as on x86 (the C source's ee_v4 path), with no
contraction into fused multiply-adds under -std=c99: the same bits as the host's C.

Instructions: user-mode QEMU has no -icount and Debian ships no TCG plugins, so a counted run
is traced instead (-singlestep -d exec,nochain: one line per guest instruction executed). The
harness marks each reading of its counter with a call to ee_mark (platform_hosted.c); the
instructions between two marks, less the few of the mark itself (found from the calibration
loops of exactly 40,000 and 240,000 instructions: about a dozen, exact to the one or two
that load a call's arguments), are the call's. A traced run is slow (a
line an instruction), so verify runs untraced and only the figures are traced.

Tools: Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user.
"""

from __future__ import annotations

import functools
import subprocess
import threading

import numpy as np

from ..errors import ArtifactError
from .base import (
    MODEL_FLAGS,
    SPIN,
    Program,
    Target,
    compile_harness,
    object_footprint,
    run_for_output,
    run_tool,
    toolchain_of,
)

GCC, SIZE, NM = "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-size", "aarch64-linux-gnu-nm"
QEMU = "qemu-aarch64"
INSTALL = "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
METHOD = ("instructions executed between two calls of a marker function, from qemu-aarch64's "
          "trace (-singlestep -d exec,nochain, one line an instruction), less the marker's own, "
          "found from loops of exactly 40,000 and 240,000 instructions in the same run")
CFLAGS = ("-march=armv8-a",)


@functools.cache
def toolchain() -> dict:
    return toolchain_of(GCC, QEMU, "glibc (static, Debian's libc6-dev-arm64-cross)")


class AArch64(Target):
    name, label, family = "aarch64", "AArch64 (Linux)", "aarch64"
    tools = (GCC, SIZE, NM, QEMU)
    library = "libc.a"
    install = INSTALL
    method = METHOD
    where = "emulated aarch64 (qemu-aarch64)"
    count_runs = True

    def toolchain(self) -> dict:
        return toolchain()

    def build(self, program: Program) -> None:
        objs = compile_harness(program, GCC, list(CFLAGS), "platform_hosted.c", "aarch64")
        program.binary = program.work / "program"
        run_tool([GCC, "-static", *objs, "-o", str(program.binary)], program.work,
                 f"{program.source.name} does not link for aarch64")
        nm = run_tool([NM, str(program.binary)], program.work, "nm").stdout
        marks = [line.split()[0] for line in nm.splitlines() if line.endswith(" ee_mark")]
        if len(marks) != 1:
            raise ArtifactError("the aarch64 harness has no ee_mark to count between")
        program.mark = f"/{int(marks[0], 16):016x}/".encode()

    def execute(self, program: Program, timeout: float, count: bool) -> bytes:
        where = "qemu-aarch64"
        if not count:
            return run_for_output(program, [QEMU, str(program.binary)], where, timeout)
        out = program.work / "out.bin"
        marks = []
        with subprocess.Popen([QEMU, "-singlestep", "-d", "exec,nochain", str(program.binary)],
                              cwd=program.work, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) as proc:
            # The trace is read as it comes: a run past the timeout is killed, which ends it.
            expired = threading.Event()

            def expire() -> None:
                expired.set()
                proc.kill()

            timer = threading.Timer(timeout, expire)
            timer.start()
            try:
                for number, line in enumerate(proc.stderr):
                    if program.mark in line:
                        marks.append(number)
                proc.wait()
            finally:
                timer.cancel()
        if expired.is_set():
            raise ArtifactError(f"{where} (traced) did not finish in {timeout:.0f} s")
        if proc.returncode != 0 or not out.is_file():
            raise ArtifactError(f"the program on {where} (traced) failed (exit {proc.returncode})")
        return _counted(out.read_bytes(), marks, program.whole)

    def footprint(self, program: Program) -> dict:
        return object_footprint(program.model_obj, program.prefix, SIZE, NM)

    def describe(self) -> dict:
        return {"board": "qemu-aarch64 (Linux user mode)", "float_abi": "hard (NEON)",
                "flags": " ".join([*CFLAGS, *MODEL_FLAGS])}


def _counted(raw: bytes, marks: list[int], whole: bool) -> bytes:
    """out.bin with its counter fields filled in from the trace: each reading pair's
    instructions, less the marker's own."""
    segments = np.diff(np.array(marks, np.int64))[::2]
    head = np.frombuffer(raw[:16], "<u4").copy()
    n = int(head[1])
    steps_total = len(segments) - 2 - n
    if len(marks) % 2 or steps_total < 0 or (not whole and (steps_total % max(n, 1))):
        raise ArtifactError(f"the aarch64 trace has {len(marks)} marks, not what {n} sequences make")
    # The marker's own instructions and the call around what is counted: the same to within
    # the one or two that load a call's arguments (120,000 takes two, 20,000 one).
    overhead = int(segments[0]) - 2 * SPIN[0]
    if abs(int(segments[1]) - 2 * SPIN[1] - overhead) > 2:
        raise ArtifactError("the aarch64 trace's calibration loops disagree")
    counts = segments - overhead
    head[2], head[3] = 2 * SPIN[0], 2 * SPIN[1]  # checked above: one tick, one instruction
    per = (len(raw) - 16) // 4 // (n * (1 if whole else 2)) if n else 0
    words = np.frombuffer(raw[16:], "<u4").copy().reshape(-1, per) if n else np.zeros((0, 0), "<u4")
    words[:n, per - 2] = counts[2:2 + n]
    if not whole and n:
        steps = counts[2 + n:].reshape(n, -1)
        words[n:, per - 2] = steps.sum(axis=1)
        words[n:, per - 1] = steps.max(axis=1)
    return head.tobytes() + words.tobytes()


TARGETS = (AArch64(),)
