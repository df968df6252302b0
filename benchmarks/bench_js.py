"""The JavaScript runtimes beside their Python twins, side by side in one run (issue 36).

Per model, file and JavaScript runtime: the worst error against Keras over verify's inputs and
its verdict, and bench's p50 of the bare call on a prepared feed (ONNX Runtime's session.run,
LiteRT.js's model.run, timed inside Node or the page), next to the Python runtime on the same
file (the .web.tflite's twin is LiteRT on the .tflite it was made from). Step files are
verified, not timed (a stepped loop across the process boundary is no app's call).

    .venv/bin/python benchmarks/bench_js.py [EXPORT_DIR]     (default: exported/)

Writes benchmarks/results/js.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge_echo.bench import bench
from edge_echo.runners import JS_RUNNERS, python_twin
from edge_echo.verify import verify

ROOT = Path(__file__).resolve().parents[1]
TWIN = {cls.runtime: cls.twin for cls in JS_RUNNERS}


def main() -> int:
    missing = {cls.runtime: cls.unavailable() for cls in JS_RUNNERS if cls.unavailable()}
    if missing:
        print(f"bench_js: {'; '.join(dict.fromkeys(missing.values()))}", file=sys.stderr)
        return 2
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "exported"
    checked = verify(directory, latency_runs=0, cores=())
    pythons = tuple(dict.fromkeys(TWIN.values()))
    timed = bench(directory, tuple(TWIN) + pythons, runs=1000, warmup=100, memory=False, cores=())
    p50 = {(r.model, r.runtime): r.timing.p50_us for r in timed.rows}
    results = {(r.model, r.runtime): r for r in checked.results}
    rows = []
    for (model, label), r in results.items():
        base = label.split(":")[0].removesuffix("-step")
        if base not in TWIN:
            continue
        other = results.get((model, python_twin(label)))
        rows.append({
            "model": model, "runtime": label, "file": r.file, "worst_error": r.max_abs,
            "passed": r.passed, "p50_us": p50.get((model, label)),
            "python_runtime": python_twin(label), "python_file": other.file if other else None,
            "python_worst_error": other.max_abs if other else None,
            "python_p50_us": p50.get((model, python_twin(label))),
            "differs_from_python_by_more_than_1e-6": bool(other and abs(r.max_abs - other.max_abs) > 1e-6),
        })
    print(f"{'model':13} {'runtime':27} {'file':29} {'error':>8} {'python':>8} {'p50 µs':>8} "
          f"{'python':>8} {'ratio':>6} verdict")
    for row in rows:
        ratio = (row["p50_us"] / row["python_p50_us"] if row["p50_us"] and row["python_p50_us"]
                 else None)
        print(f"{row['model']:13} {row['runtime']:27} {row['file']:29} {row['worst_error']:8.1e} "
              f"{row['python_worst_error'] or 0:8.1e} "
              f"{row['p50_us'] or float('nan'):8.1f} {row['python_p50_us'] or float('nan'):8.1f} "
              f"{ratio or float('nan'):6.2f} {'pass' if row['passed'] else 'FAIL'}")
    out = ROOT / "benchmarks" / "results" / "js.json"
    out.write_text(json.dumps({"directory": str(directory), "machine": timed.machine,
                               "versions": timed.to_dict()["versions"],
                               "rows": rows}, indent=1) + "\n")
    print(f"bench_js: wrote {out.relative_to(ROOT)}")
    return 0 if all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
