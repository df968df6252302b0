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


def first_input(subject: Subject, c: dict) -> tuple[np.ndarray, str]:
    """The one sequence the device figures are measured on, as the harness reads it, and what
    it is: the first reference sequence (or, without one, seeded uniform [0, 1) values); for a
    whole-sequence model, the first calibration sequence of each input, packed."""
    from ... import targets

    if c.get("mode") == "whole_sequence":
        calibration = subject.calibration
        if not isinstance(calibration, dict):
            calibration = {subject.interface.input_name: calibration}
        arrays = [np.asarray(calibration[i["name"]][:1]) for i in c["inputs"]]
        return targets.pack(c, arrays), "the first calibration sequence of each input"
    size = c["steps"] * c["features"]
    x = subject.reference_x
    if isinstance(x, np.ndarray) and x.size >= size:
        return np.asarray(x, np.float32).reshape(-1)[:size], "the first reference sequence"
    return (np.random.default_rng(0).uniform(0, 1, size).astype(np.float32),
            "uniform [0, 1) values (seed 0)")


def device_figures(subject: Subject, path: Path, c: dict, artifact: str = "c_source",
                   header: str | None = None) -> dict:
    """Every device target's figures (targets/) for this file, by family, on first_input. A C
    source is measured as a copy beside the header it was made with (header: its text, if not
    the float C's)."""
    from ... import targets

    x, which = first_input(subject, c)
    with tempfile.TemporaryDirectory(prefix="edge-echo-c-") as tmp:
        if artifact == "c_source":
            copy = Path(tmp) / path.name
            copy.write_bytes(path.read_bytes())
            copy.with_suffix(".h").write_text(_generated(subject)[1] if header is None else header)
            path = copy
        families = targets.measure(path, c, x, artifact=artifact)
    return {family: {"input": which, **f} if "cores" in f else f for family, f in families.items()}


def measure(subject: Subject, path: Path, art: dict) -> dict:
    """What the C source costs where it was measured (device.json, not the manifest): flash and
    stack on this host's compiler, and every device target's figures, by family (cortex_m,
    riscv, aarch64)."""
    return {"footprint": footprint(path), **device_figures(subject, path, art["c"])}
