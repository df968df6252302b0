"""Cortex-M cores under QEMU: the C source cross-compiled for a core, linked into a small
firmware for the matching qemu-system-arm board, run there, and measured.

The firmware (firmware/: startup.c, platform_cortexm.c, harness.c, link.ld.in) reads its input
sequences from a file over semihosting and writes the outputs and the SysTick ticks of each
call back. QEMU runs with -icount shift=0: every guest instruction advances the emulated clock
by one nanosecond, so SysTick ticks count instructions. Two calibration loops of exactly
40,000 and 240,000 instructions, timed in the same run, turn ticks into instructions (40 a
tick on the MPS2 boards at 25 MHz). These are instructions, not cycles: an estimate in
microseconds at the board's clock assumes one instruction per cycle and is labelled as an
estimate.

Tools: arm-none-eabi-gcc with newlib (Debian's gcc-arm-none-eabi, libnewlib-arm-none-eabi)
and qemu-system-arm. Without them every runtime here says so in one line and is skipped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .base import (
    FIRMWARE,
    MODEL_FLAGS,
    Program,
    Target,
    compile_harness,
    object_footprint,
    run_for_output,
    run_tool,
    toolchain_of,
)

GCC, SIZE, NM, QEMU = "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm"
INSTALL = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
METHOD = ("SysTick ticks under qemu -icount shift=0 (one instruction is one emulated "
          "nanosecond), calibrated in the same run against loops of exactly 40,000 and "
          "240,000 instructions; resolution one tick")
KiB, MiB = 1024, 1024 * 1024


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


@functools.cache
def toolchain() -> dict:
    return toolchain_of(GCC, QEMU, "newlib-nano (--specs=nano.specs)")


def linker_script(core: Core) -> str:
    return (FIRMWARE / "link.ld.in").read_text().format(
        board=core.board, core=core.name, flash=core.flash[0], flash_size=core.flash[1],
        ram=core.ram[0], ram_size=core.ram[1])


class CortexM(Target):
    family = "cortex_m"
    tools = (GCC, SIZE, NM, QEMU)
    install = INSTALL
    method = METHOD
    where = "emulated Cortex-M cores"

    def __init__(self, core: Core):
        self.core = core
        self.name, self.label = core.name, core.label

    def toolchain(self) -> dict:
        return toolchain()

    def build(self, program: Program) -> None:
        core = self.core
        (program.work / "link.ld").write_text(linker_script(core))
        program.copy_firmware("semihost.h")
        objs = compile_harness(program, GCC, core.cflags, "platform_cortexm.c", core.name,
                               extra=(("startup.c", ()),))
        program.binary = program.work / "firmware.elf"
        # libm stays on the line so that a source that still calls it links; nm -u of the
        # model object (footprint) shows whether it does.
        run_tool([GCC, *core.cflags, "-nostartfiles", "-T", "link.ld", "--specs=nano.specs",
                  "-Wl,--gc-sections", *objs, "-lm", "-o", str(program.binary)], program.work,
                 f"{program.source.name} does not fit {core.board} ({core.label}: "
                 f"{core.flash[1] // KiB} KiB flash, {core.ram[1] // KiB} KiB RAM)")

    def execute(self, program: Program, timeout: float, count: bool) -> bytes:
        return run_for_output(program, [
            QEMU, "-M", self.core.board, "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", "shift=0,align=off",
            "-kernel", str(program.binary)], f"{self.core.board} ({self.core.name})", timeout)

    def footprint(self, program: Program) -> dict:
        return object_footprint(program.model_obj, program.prefix, SIZE, NM)

    def describe(self) -> dict:
        core = self.core
        return {"board": core.board, "float_abi": core.float_abi,
                "flags": " ".join([*core.cflags, *MODEL_FLAGS]), "clock_hz": core.clock_hz}


TARGETS = tuple(CortexM(core) for core in CORES.values())
