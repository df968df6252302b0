"""WebAssembly: the C source compiled by clang to a freestanding wasm32 module (no libc, no
Emscripten: the C source needs no libm), with a small ES-module loader, run in Node.

build_module() makes NAME.wasm from the C source and loader() writes NAME.mjs: both are export
forms (convert/wasm.py), and c@wasm32 / c-step@wasm32 run those shipped files, through the
shipped loader, in Node (firmware/harness.mjs reads in.bin and writes out.bin like the C
harness). The module's bytes are a function of the C source and the compiler alone: no path,
time or build id goes in.

Nothing counts instructions in Node, so the figures are time: bench times the loader's
predict on a prepared input in a loop inside Node (p50 and p99 of a call), beside the host C.

Tools: Debian's clang and lld (wasm-ld), and nodejs.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ArtifactError
from .base import Program, Target, call_error, first_line_of, run_for_output, run_tool

CLANG, LLD, NODE = "clang", "wasm-ld", "node"
INSTALL = "apt-get install clang lld nodejs"
METHOD = ("time in Node (bench only; export records bytes): the loader's predict on one "
          "prepared sequence, called in a loop after a warm-up (process.hrtime), p50 and p99 of "
          "a call")
# -Oz: the module is downloaded; simd128 and bulk memory are in every browser and Node since
# 2021 (memset and memcpy become memory.fill and memory.copy, so nothing is imported).
FLAGS = ("--target=wasm32", "-Oz", "-std=c99", "-ffreestanding", "-nostdlib", "-msimd128",
         "-mbulk-memory", "-mnontrapping-fptoint", "-msign-ext", "-Wall", "-Wextra", "-Werror",
         "-pedantic")
LINK = ("-Wl,--no-entry", "-Wl,--strip-all")
SCALAR = ("-DEE_SCALAR", "-fno-slp-vectorize", "-fno-vectorize")
# The stack beside the model's own buffers (wasm-ld's default is 64 KiB).
STACK = 16 * 1024
# The C source includes <string.h> for memset and memcpy; a freestanding wasm32 has none, so
# the build gives it the compiler's own.
STRING_H = """\
/* string.h for edge-echo's freestanding wasm32 build: the compiler's own memset and memcpy
 * (memory.fill and memory.copy under -mbulk-memory). */
#ifndef EE_WASM_STRING_H
#define EE_WASM_STRING_H
typedef __SIZE_TYPE__ size_t;
#define memset(d, c, n) __builtin_memset((d), (c), (n))
#define memcpy(d, s, n) __builtin_memcpy((d), (s), (n))
#define memmove(d, s, n) __builtin_memmove((d), (s), (n))
#endif
"""


def unavailable_build() -> str | None:
    missing = [t for t in (CLANG, LLD) if shutil.which(t) is None]
    if missing:
        return f"no {' or '.join(missing)} here to build WebAssembly (Debian: apt-get install clang lld)"
    return None


@functools.cache
def compiler() -> str:
    return first_line_of([CLANG, "--version"])


def _shim(c: dict, header: str) -> str:
    """The module's exports: its buffers (x, y) and predict, and reset and step where the C
    source has them. A whole-sequence model's inputs are packed into x as harness.c packs them
    (token ids as int32)."""
    from . import whole_call

    p = c["prefix"]
    up = p.upper()
    lines = [f'#include "{header}"', "#define EE_EXPORT(n) __attribute__((export_name(n)))"]
    if c.get("mode") == "whole_sequence":
        lines += [whole_call(c).strip(), "static float ee_x_[EE_WORDS];",
                  f"static float ee_y_[{up}_Y_SIZE];",
                  'EE_EXPORT("predict") int ee_predict(void) { return EE_CALL(ee_x_, ee_y_); }']
    else:
        lines += [f"static float ee_x_[{up}_STEPS * {up}_FEATURES];",
                  f"static float ee_y_[{up}_Y_SIZE];", f"static {p}_state ee_s_;",
                  f'EE_EXPORT("predict") void ee_predict(void) {{ {p}_predict(ee_x_, ee_y_); }}',
                  f'EE_EXPORT("reset") void ee_reset(void) {{ {p}_reset(&ee_s_); }}',
                  f'EE_EXPORT("step") void ee_step(void) {{ {p}_step(&ee_s_, ee_x_, ee_y_); }}']
    lines += ['EE_EXPORT("x") float *ee_x(void) { return ee_x_; }',
              'EE_EXPORT("y") float *ee_y(void) { return ee_y_; }']
    return "\n".join(lines) + "\n"


def stack_bytes(c: dict) -> int:
    return STACK + (int(c.get("stack_buffer_bytes", 0)) + 15) // 16 * 16


def build_module(source: str, header: str, c: dict, name: str, scalar: bool = False) -> bytes:
    """NAME.wasm from the C source text and its header, for the contract c."""
    why = unavailable_build()
    if why:
        raise ArtifactError(why)
    with tempfile.TemporaryDirectory(prefix="edge-echo-wasm-") as tmp:
        work = Path(tmp)
        (work / "include").mkdir()
        (work / "include" / "string.h").write_text(STRING_H)
        (work / f"{name}.c").write_text(source)
        (work / f"{name}.h").write_text(header)
        (work / "exports.c").write_text(_shim(c, f"{name}.h"))
        # scalar: the C source's scalar code, not auto-vectorized either (LLVM's SLP
        # vectorizer otherwise makes the same simd128 code of it): a check of the bits.
        cmd = [CLANG, *FLAGS, *(SCALAR if scalar else ()), "-Iinclude", *LINK,
               f"-Wl,-z,stack-size={stack_bytes(c)}", "exports.c", f"{name}.c", "-o", "m.wasm"]
        run_tool(cmd, work, f"{name}.c does not build for wasm32")
        return (work / "m.wasm").read_bytes()


def loader(c: dict, name: str) -> str:
    """NAME.mjs: load(source) instantiates NAME.wasm (beside the loader by default; or a URL,
    path, bytes or WebAssembly.Module) and gives predict, and reset and step where the C source
    has them, on Float32Arrays (token ids on Int32Arrays)."""
    whole = c.get("mode") == "whole_sequence"
    head = (f"// {name}.mjs: edge-echo's loader for {name}.wasm (the C source {name}.c compiled "
            "for wasm32; its sha256 is in the manifest).\n")
    fetcher = (
        f'export async function load(source = new URL("./{name}.wasm", import.meta.url)) {{\n'
        '  if (typeof source === "string" || source instanceof URL) {\n'
        '    const url = new URL(source, import.meta.url);\n'
        '    source = url.protocol === "file:"\n'
        '      ? await (await import("node:fs/promises")).readFile(url)\n'
        '      : await (await fetch(url)).arrayBuffer();\n'
        '  }\n'
        '  const made = await WebAssembly.instantiate(source);\n'
        '  const e = (made.instance || made).exports, m = e.memory.buffer;\n'
        '  const put = (v, a) => {\n'
        '    if (a.length !== v.length) throw new RangeError(`takes ${v.length} values, got ${a.length}`);\n'
        '    v.set(a);\n'
        '  };\n')
    if whole:
        views, offset = [], 0
        for spec in c["inputs"]:
            size = int(np.prod(spec["shape"]))
            kind = "Int32Array" if spec["dtype"] == "int32" else "Float32Array"
            views.append(f"new {kind}(m, e.x() + {4 * offset}, {size})")
            offset += size
        body = (f"export const INPUTS = {json.dumps([i['name'] for i in c['inputs']])}, "
                f"Y_SIZE = {c['y_size']};\n" + fetcher
                + f"  const xs = [{', '.join(views)}];\n"
                "  const y = new Float32Array(m, e.y(), Y_SIZE);\n"
                "  return {\n"
                "    predict(...inputs) {\n"
                "      if (inputs.length !== xs.length) throw new RangeError(`takes ${xs.length} inputs`);\n"
                "      inputs.forEach((a, i) => put(xs[i], a));\n"
                '      if (e.predict() !== 0) throw new RangeError("a token id is outside the vocabulary");\n'
                "      return y.slice();\n"
                "    },\n"
                "  };\n"
                "}\n")
    else:
        y_size = c["outputs"] * (c["steps"] if c["sequence_output"] == "every_step" else 1)
        body = (f"export const STEPS = {c['steps']}, FEATURES = {c['features']}, "
                f"OUTPUTS = {c['outputs']}, Y_SIZE = {y_size};\n"
                + fetcher
                + "  const x = new Float32Array(m, e.x(), STEPS * FEATURES);\n"
                "  const y = new Float32Array(m, e.y(), Y_SIZE);\n"
                "  return {\n"
                "    predict(a) { put(x, a); e.predict(); return y.slice(); },\n"
                "    reset() { e.reset(); },\n"
                "    step(a) { put(x.subarray(0, FEATURES), a); e.step(); return y.slice(0, OUTPUTS); },\n"
                "  };\n"
                "}\n")
    return head + body


def layout(program: Program) -> str:
    """harness.mjs's LAYOUT argument: "steps", or a whole-sequence model's inputs."""
    if not program.whole:
        return "steps"
    return "whole:" + ",".join(("i" if i["dtype"] == "int32" else "f") + str(int(np.prod(i["shape"])))
                               for i in program.contract["inputs"])


class Wasm32(Target):
    name, label, family = "wasm32", "WebAssembly (Node)", "wasm"
    artifact = "wasm"
    tools = (NODE,)
    install = "apt-get install nodejs"
    method = METHOD
    where = "WebAssembly in Node"
    counts = "time"

    def toolchain(self) -> dict:
        node = first_line_of([NODE, "--version"])
        return {"compiler": compiler() if shutil.which(CLANG) else "?",
                "runtime": f"Node {node}", "libc": "none (freestanding)"}

    def companions(self, path: Path) -> tuple[Path, ...]:
        return (path.with_suffix(".mjs"),)

    def build(self, program: Program) -> None:
        # Nothing to compile: the shipped module runs through its shipped loader (a companion,
        # copied beside it by Program).
        program.copy_firmware("harness.mjs")
        program.binary = program.source.with_suffix(".mjs")

    def execute(self, program: Program, timeout: float, count: bool) -> bytes:
        return run_for_output(program, [NODE, "harness.mjs", program.binary.name, "in.bin",
                                        "out.bin", layout(program)], "Node", timeout)

    def time(self, program: Program, x: np.ndarray, runs: int, warmup: int) -> dict:
        """p50 and p99 of the loader's predict on one prepared sequence, in Node."""
        (program.work / "one.bin").write_bytes(np.ascontiguousarray(x, "<f4").tobytes())
        cmd = [NODE, "harness.mjs", program.binary.name, "one.bin", "-", layout(program),
               str(runs), str(warmup)]
        done = subprocess.run(cmd, cwd=program.work, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise call_error("Node", done)
        return json.loads(done.stdout)

    def footprint(self, program: Program) -> dict:
        return {"wasm_bytes": program.source.stat().st_size,
                "loader_bytes": program.binary.stat().st_size}

    def describe(self) -> dict:
        return {"board": "Node (V8)", "float_abi": "wasm32 f32, simd128",
                "flags": " ".join([*FLAGS, *LINK])}


TARGETS = (Wasm32(),)
