"""How much memory a runtime takes to create and run one model: measured in a child per row.

The child imports the runtime first (its import is not the model's cost),
resets the kernel's peak-RSS mark (Linux: /proc/self/clear_refs), creates the
session or interpreter, runs the bare call a few times, and reports how far
the peak grew. One child per row keeps rows from sharing allocator pools,
caches and thread pools, which would make later rows look cheaper.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import first_line

METHOD = ("growth of the peak resident set (VmHWM, reset through /proc/self/clear_refs) while "
          "creating the session or interpreter and making {runs} bare calls at batch 1, in a "
          "child process per row with the runtime already imported")
RUNS = 10

_CHILD = """
import importlib, json, re, sys
args = json.loads(sys.argv[1])
runner_module = importlib.import_module(args["module"])
cls = getattr(runner_module, args["class"])
for name in cls.imports:
    importlib.import_module(name)
import numpy as np

def peak_kib():
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1))

feed = {i["name"]: np.zeros(i["shape"], i.get("dtype", "float32")) for i in args["inputs"]}
open("/proc/self/clear_refs", "w").write("5")
before = peak_kib()
with cls(args["path"], [i["name"] for i in args["inputs"]], args["outputs"],
         threads=args["threads"], artifact=args["artifact"]) as runner:
    call = runner.prepared(feed)
    for _ in range(args["runs"]):
        call()
    after = peak_kib()
print(json.dumps({"peak_rss_delta_bytes": (after - before) * 1024}))
"""


def supported() -> bool:
    return sys.platform.startswith("linux") and Path("/proc/self/clear_refs").exists()


def peak_rss_delta(cls, path: Path, artifact: dict, inputs: list[dict], outputs: list[str],
                   threads: int = 1, timeout: float = 300) -> int | str:
    """Bytes the peak RSS grew by, or a one-line reason it was not measured. inputs: name,
    shape (batch included) and dtype of each input; it runs on zeros of them."""
    args = {"module": cls.__module__, "class": cls.__name__, "path": str(path),
            "artifact": artifact, "threads": threads, "runs": RUNS,
            "inputs": [{"name": i["name"], "shape": [int(d) for d in i["shape"]],
                        "dtype": i.get("dtype", "float32")} for i in inputs],
            "outputs": list(outputs)}
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"the measurement did not finish within {timeout:.0f} s"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return first_line(lines[-1] if lines else f"the child exited with code {done.returncode}")
    return int(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_delta_bytes"])


def measure_all(jobs: list[dict], workers: int = 2) -> list[int | str]:
    """peak_rss_delta for each job (its keyword arguments), children two at a time: each child
    measures only itself, so running them side by side does not change what they measure."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: peak_rss_delta(**job), jobs))
