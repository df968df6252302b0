"""RISC-V microcontrollers under QEMU: rv32imac (no FPU: ESP32-C3, CH32V, GD32V) and rv32imafc
(single-precision FPU), the C source cross-compiled with picolibc and run bare-metal on
qemu-system-riscv32's virt machine, files over semihosting (picolibc's crt0 and stdio).

Instructions are the core's own retired-instruction counter, minstret, read around each call
(exact under qemu -icount shift=0); the harness's calibration loops (2 instructions an
iteration) check that one tick is one instruction.

Tools: Debian's gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf and qemu-system-misc.
"""

from __future__ import annotations

import functools

from .base import (
    MODEL_FLAGS,
    Program,
    Target,
    compile_harness,
    object_footprint,
    run_for_output,
    run_tool,
    toolchain_of,
)

GCC, SIZE, NM = "riscv64-unknown-elf-gcc", "riscv64-unknown-elf-size", "riscv64-unknown-elf-nm"
QEMU = "qemu-system-riscv32"
INSTALL = ("apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf "
           "qemu-system-misc")
METHOD = ("minstret, the core's retired-instruction counter, read before and after each call "
          "under qemu-system-riscv32 -icount shift=0; checked against loops of exactly 40,000 "
          "and 240,000 instructions in the same run")
# The virt machine's RAM starts at 0x80000000: the program links as if the first 4 MiB were
# flash (code and constants) and the next 4 MiB its RAM, with a 1 MiB stack.
LAYOUT = ("-Wl,--defsym=__flash=0x80000000", "-Wl,--defsym=__flash_size=0x400000",
          "-Wl,--defsym=__ram=0x80400000", "-Wl,--defsym=__ram_size=0x400000",
          "-Wl,--defsym=__stack_size=0x100000")


@functools.cache
def toolchain() -> dict:
    return toolchain_of(GCC, QEMU, "picolibc (--specs=picolibc.specs --oslib=semihost)")


class RiscV(Target):
    family = "riscv"
    tools = (GCC, SIZE, NM, QEMU)
    library = "picolibc.specs"
    install = INSTALL
    method = METHOD
    where = "emulated RISC-V cores"
    board = "virt"

    def __init__(self, name: str, label: str, march: str, mabi: str, float_abi: str):
        self.name, self.label, self.float_abi = name, label, float_abi
        self.cflags = [f"-march={march}", f"-mabi={mabi}"]

    def toolchain(self) -> dict:
        return toolchain()

    def build(self, program: Program) -> None:
        objs = compile_harness(program, GCC, [*self.cflags, "--specs=picolibc.specs"],
                               "platform_hosted.c", self.name)
        program.binary = program.work / "program.elf"
        run_tool([GCC, *self.cflags, "--specs=picolibc.specs", "--oslib=semihost",
                  "--crt0=semihost", *LAYOUT, *objs, "-o", str(program.binary)], program.work,
                 f"{program.source.name} does not fit {self.board} ({self.label}: 4 MiB flash, "
                 "4 MiB RAM)")

    def execute(self, program: Program, timeout: float, count: bool) -> bytes:
        return run_for_output(program, [
            QEMU, "-M", self.board, "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", "shift=0,align=off",
            "-bios", "none", "-kernel", str(program.binary)], f"{self.board} ({self.name})",
            timeout)

    def footprint(self, program: Program) -> dict:
        return object_footprint(program.model_obj, program.prefix, SIZE, NM)

    def describe(self) -> dict:
        return {"board": self.board, "float_abi": self.float_abi,
                "flags": " ".join([*self.cflags, *MODEL_FLAGS])}


TARGETS = (
    RiscV("riscv32imac", "RV32IMAC", "rv32imac", "ilp32", "soft"),
    RiscV("riscv32imafc", "RV32IMAFC", "rv32imafc", "ilp32f", "hard, F (single precision)"),
)
