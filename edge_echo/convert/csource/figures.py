"""What the C costs where it was measured (device.json, not the manifest): flash and stack on this
host's compiler, and every device target's figures (targets/), by family."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ...forms import Subject
from .generate import _generated

# gcc/clang flags the contract promises the file compiles under, warning-free.
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def compiler() -> str | None:
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc):
            return shutil.which(cc)
    return None


def footprint(path: Path) -> dict:
    """Compiled at -Os with the strict flags: flash (text + data), mutable globals (data + bss)
    and the deepest stack frame (-fstack-usage); measured here, on this host's compiler."""
    cc = compiler()
    if cc is None:
        return {"measured": "not measured: no C compiler (cc, gcc or clang) found"}
    with tempfile.TemporaryDirectory(prefix="edge-echo-c-") as tmp:
        obj = Path(tmp) / "m.o"
        done = subprocess.run([cc, *STRICT, "-Os", "-fstack-usage", "-c", str(path.resolve()), "-o",
                               str(obj)], capture_output=True, text=True, cwd=tmp)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["?"]
            first = next((line for line in lines if "error" in line or "warning" in line), lines[0])
            raise RuntimeError(f"{path.name} does not compile warning-free with "
                               f"{' '.join(STRICT)}: {first}")
        size = subprocess.run(["size", str(obj)], capture_output=True, text=True)
        text, data, bss = (int(v) for v in size.stdout.splitlines()[1].split()[:3])
        stack = [int(line.split("\t")[1]) for su in Path(tmp).glob("*.su")
                 for line in su.read_text().splitlines() if line.count("\t") >= 2]
        version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    return {"flash_bytes": text + data, "mutable_global_bytes": data + bss,
            "max_stack_frame_bytes": max(stack, default=0),
            "measured": f"{Path(cc).name} -Os {' '.join(STRICT)}, size and -fstack-usage "
                        f"({version.splitlines()[0] if version else '?'})"}


def device_figures(subject: Subject, path: Path, c: dict) -> dict:
    """Flash, stack, state and instructions on every device target (targets/), by family, on
    the first reference sequence (or, without one, seeded uniform [0, 1) values)."""
    from ... import targets

    size = c["steps"] * c["features"]
    x = None if not isinstance(subject.reference_x, np.ndarray) else \
        np.asarray(subject.reference_x, np.float32)
    if x is not None and x.size >= size:
        x, which = x.reshape(-1)[:size], "the first reference sequence"
    else:
        x, which = np.random.default_rng(0).uniform(0, 1, size), "uniform [0, 1) values (seed 0)"
    with tempfile.TemporaryDirectory(prefix="edge-echo-c-") as tmp:
        copy = Path(tmp) / path.name
        copy.write_bytes(path.read_bytes())
        copy.with_suffix(".h").write_text(_generated(subject)[1])
        families = targets.measure(copy, c, x)
    return {family: {"input": which, **f} if "cores" in f else f for family, f in families.items()}


def _whole_device_figures(subject: Subject, path: Path, c: dict) -> dict:
    """A whole-sequence model's figures on every device target: NAME_predict on the first
    calibration sequence of each input (drawn as the reference inputs are)."""
    from ... import targets

    calibration = subject.calibration
    if not isinstance(calibration, dict):
        calibration = {subject.interface.input_name: calibration}
    arrays = [np.asarray(calibration[i["name"]][:1]) for i in c["inputs"]]
    with tempfile.TemporaryDirectory(prefix="edge-echo-c-") as tmp:
        copy = Path(tmp) / path.name
        copy.write_bytes(path.read_bytes())
        copy.with_suffix(".h").write_text(_generated(subject)[1])
        families = targets.measure(copy, c, targets.pack(c, arrays))
    which = "the first calibration sequence of each input"
    return {family: {"input": which, **f} if "cores" in f else f for family, f in families.items()}


def measure(subject: Subject, path: Path, art: dict) -> dict:
    """What the C source costs where it was measured (device.json, not the manifest): flash and
    stack on this host's compiler, and every device target's figures, by family (cortex_m,
    riscv, aarch64)."""
    c = art["c"]
    families = (_whole_device_figures(subject, path, c) if c.get("mode") == "whole_sequence"
                else device_figures(subject, path, c))
    return {"footprint": footprint(path), **families}
