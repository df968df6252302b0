"""edge-echo report: one self-contained HTML page per export or convert directory.

It reads what the other commands wrote (manifest.json, verify --json, bench
--json, and benchmarks/bench_scaling.py's figures where given) and draws them
side by side: per model a card, every file with its contract, every runtime's
error against Keras with a parity plot, latency and memory, and which file to
ship where, derived from those figures. Nothing is measured here and nothing is
loaded from the network: CSS is inline, plots are inline SVG, and there is no
script, so the page reads the same with JavaScript off. Only the standard
library is used, so it works in the runtime-only install.

Every figure taken from a JSON file is written into the DOM twice: as text, and
as the exact value in a data-value attribute, so that a test (or a user's own
script) can check the page against the JSON. A file that is missing, altered or
unreadable is shown as such; it never stops the page.
"""

from __future__ import annotations

import html
import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from . import manifest as manifest_mod
from . import results
from .errors import ArtifactError

# Categories of "which file where", by the runtimes that run them.
PHONE_RUNTIMES = ("litert", "litert-compiled", "onnxruntime", "onnxruntime-ort")
MICRO_RUNTIMES = ("tflm", "litert-micro", "c")
STREAM_RUNTIMES = ("litert-step", "litert-compiled-step", "onnxruntime-step", "onnxruntime-ort-step",
                   "tflm-step", "litert-micro-step", "c-step")
# In JavaScript: a web page (headless Chromium) and Node.
WEB_RUNTIMES = ("onnxruntime-web", "onnxruntime-web-ort", "litertjs")
NODE_RUNTIMES = ("onnxruntime-node", "onnxruntime-node-ort")
COLORS = ("#2a6f97", "#bc4749", "#6a994e", "#f2a541", "#7b2cbf", "#3d405b", "#e07a5f",
          "#118ab2", "#8d99ae", "#ef476f")


@dataclass
class Inputs:
    """What the page is made from; each *_why says why a part could not be included."""
    directory: Path
    manifest: dict
    verify: dict | None = None
    verify_why: str | None = None
    bench: dict | None = None
    bench_why: str | None = None
    scaling: list | None = None
    scaling_why: str | None = None
    # The results files that do not exist at all (verify, bench).
    absent: set[str] = field(default_factory=set)
    # file name -> what is wrong with it (missing, altered); intact files are absent.
    integrity: dict[str, str] = field(default_factory=dict)
    files_checked: int = 0


def default_path(directory: Path, kind: str) -> Path:
    return Path(directory) / manifest_mod.RESULT_FILES[kind]


def gather(directory: Path, verify_file: Path | None = None, bench_file: Path | None = None,
           scaling_file: Path | None = None) -> Inputs:
    """Read the manifest (which must load: there is no page without it), check every listed
    file's size and sha256, and read the results; a bad results file is a reason, not an error."""
    directory = Path(directory)
    # With what the export measured on its machine's tools (device.json), where it has that.
    doc = results.with_device(manifest_mod.load(directory), directory)
    inputs = Inputs(directory, doc)
    for model in doc["models"].values():
        for art in model["artifacts"].values():
            inputs.files_checked += 1
            problem = manifest_mod.file_status(directory, art)
            if problem:
                inputs.integrity[art["file"]] = problem
    for kind, given, schema in (("verify", verify_file, results.VERIFY_SCHEMA),
                                ("bench", bench_file, results.BENCH_SCHEMA)):
        path = Path(given) if given else default_path(directory, kind)
        loaded, why = results.load(path, schema)
        if not path.exists():
            inputs.absent.add(kind)
        if loaded is None and given is None and not path.exists():
            command = (f"edge-echo {kind} {directory} --json {path}" + ("" if kind == "bench" else
                       " (or --no-keras without TensorFlow)"))
            why = f"no {kind} results: run `{command}`, or `edge-echo report {directory} --run`"
        setattr(inputs, kind, loaded)
        setattr(inputs, f"{kind}_why", why)
    if scaling_file is None:
        inputs.scaling_why = ("no sequence-length scaling figures: benchmarks/bench_scaling.py "
                              "measures them; pass its scaling.json with --scaling")
    else:
        inputs.scaling, inputs.scaling_why = _load_scaling(Path(scaling_file))
    return inputs


def _load_scaling(path: Path) -> tuple[list | None, str | None]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"{path} does not exist"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"{path} is not readable JSON ({exc})"
    need = ("family", "model", "length", "form", "runtime", "bytes", "p50_us")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in need)
                                             for r in rows):
        return None, f"{path}: not benchmarks/bench_scaling.py's figures (a list of {', '.join(need)})"
    return rows, None


def out_of_date(inputs: Inputs) -> dict[str, str]:
    """verify and bench results that report --run makes again, each with why: missing or
    unusable, or made for other bytes or other models than the manifest lists now. Results made
    by another edge-echo version for the same bytes stand (Reproducibility shows the versions)."""
    stale = {}
    for kind in ("verify", "bench"):
        data = getattr(inputs, kind)
        if data is None:
            stale[kind] = "there were none" if kind in inputs.absent else getattr(
                inputs, f"{kind}_why")
            continue
        rows = data["results" if kind == "verify" else "rows"]
        if any(row_problem(inputs.manifest, r) for r in rows):
            stale[kind] = "made for other files than the manifest lists"
        elif {r["model"] for r in rows} != set(inputs.manifest["models"]):
            stale[kind] = "made for other models than the manifest lists"
    return stale


def row_problem(doc: dict, row: dict) -> str | None:
    """None when a result row was made on the bytes the manifest lists now; else why not."""
    art = _artifact(doc, row["model"], row["file"])
    if art is None:
        return "the manifest lists no such file for this model now"
    if row.get("sha256") != art["sha256"]:
        return "measured on other bytes than the file the manifest lists now"
    return None


# ---------------------------------------------------------------------------------------------
# Formatting: every number shown is also kept exact in data-value.

def esc(value) -> str:
    return html.escape(str(value), quote=True)


def fmt(value, kind: str = "g") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "us":
        return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
    if kind == "ratio":
        return f"{value:.2g}" if value < 10 else f"{value:,.0f}"
    if kind == "rate":
        return f"{value:,.0f}"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    return f"{value:.3g}"


def cell(field_name: str, value, kind: str = "g", extra: str = "") -> str:
    """A table cell holding a figure: the text, and the exact value for machines."""
    # JSON, so that a script reads it back exactly; infinity and NaN (which JSON lacks) as text.
    finite = not isinstance(value, float) or math.isfinite(value)
    exact = "null" if value is None else json.dumps(value if finite else str(value))
    return (f'<td class="num{extra}" data-field="{esc(field_name)}" data-value="{esc(exact)}">'
            f"{esc(fmt(value, kind))}</td>")


def text_cell(value, css: str = "") -> str:
    return f'<td{f" class={chr(34)}{css}{chr(34)}" if css else ""}>{esc(value)}</td>'


def dims(shape) -> str:
    return "x".join("N" if d is None else str(d) for d in shape)


def verdict(passed: bool | None) -> str:
    if passed is None:
        return '<span class="unknown">not verified</span>'
    return '<span class="pass">pass</span>' if passed else '<span class="fail">FAIL</span>'


# ---------------------------------------------------------------------------------------------
# Inline SVG plots.

def _scale(low: float, high: float, start: float, end: float):
    span = (high - low) or 1.0
    return lambda v: start + (v - low) / span * (end - start)


# A point is a zero-length segment with round caps: one path per plot, a few bytes a point.
DOT = 'stroke-width="3.6" stroke-linecap="round" fill="none"'


def _dots(points) -> str:
    return "".join(f"M{x:.1f} {y:.1f}h0" for x, y in points)


def parity_svg(model: str, runtime: str, points: dict, passed: bool, max_abs: float) -> str:
    """Runtime against Keras on the stored reference inputs, with y = x."""
    size, pad = 150, 22
    keras = points["keras"]
    got = [g for g in points["runtime"] if g is not None]
    values = keras + got
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    x = _scale(low, high, pad, size - 6)
    y = _scale(low, high, size - pad, 6)
    color = COLORS[0] if passed else COLORS[1]
    dots = _dots((x(k), y(g)) for k, g in zip(keras, points["runtime"], strict=True)
                 if g is not None)
    lost = sum(g is None for g in points["runtime"])
    return (f'<figure class="parity" data-model="{esc(model)}" data-runtime="{esc(runtime)}">'
            f'<svg viewBox="0 0 {size} {size}" width="{size}" height="{size}" role="img" '
            f'aria-label="{esc(runtime)} against Keras">'
            f'<rect x="{pad}" y="6" width="{size - pad - 6}" height="{size - pad - 6}" '
            'fill="#fafafa" stroke="#ccc"/>'
            f'<line x1="{x(low):.1f}" y1="{y(low):.1f}" x2="{x(high):.1f}" y2="{y(high):.1f}" '
            'stroke="#999" stroke-width="0.8"/>'
            f'<path d="{dots}" stroke="{color}" stroke-opacity="0.7" {DOT}/>'
            f'<text x="{pad}" y="{size - 6}" font-size="8">Keras {fmt(low)} .. {fmt(high)}</text>'
            f'<text x="3" y="{size - pad}" font-size="8" transform="rotate(-90 3 {size - pad})" '
            f'dy="6">{esc(runtime)}</text></svg>'
            f'<figcaption>{esc(runtime)}: max |diff| {esc(fmt(max_abs))}'
            f'{f", {lost} non-finite" if lost else ""}</figcaption></figure>')


def error_strip_svg(model: str, rows: list[dict]) -> str:
    """|runtime - Keras| of every plotted point, per runtime on one log axis, with each
    runtime's atol marked: how far below its tolerance each runtime sits."""
    rows = [r for r in rows if r.get("parity")]
    if not rows:
        return ""
    left, width, line = 190, 560, 16
    lo_exp, hi_exp = -10, 0
    x = _scale(lo_exp, hi_exp, left, left + width)
    height = 30 + line * len(rows)
    parts = [f'<svg viewBox="0 0 {left + width + 20} {height}" width="{left + width + 20}" '
             f'height="{height}" role="img" aria-label="error against Keras, {esc(model)}">']
    for e in range(lo_exp, hi_exp + 1, 2):
        parts.append(f'<line x1="{x(e):.1f}" y1="4" x2="{x(e):.1f}" y2="{height - 18}" '
                     f'stroke="#e3e3e3"/><text x="{x(e):.1f}" y="{height - 6}" font-size="9" '
                     f'text-anchor="middle">1e{e}</text>')
    for k, r in enumerate(rows):
        top = 8 + k * line
        mid = top + line / 2
        color = COLORS[0] if r["passed"] else COLORS[1]
        parts.append(f'<text x="{left - 6}" y="{mid + 3:.1f}" font-size="9" text-anchor="end">'
                     f'{esc(r["runtime"])}</text>')
        marks = []
        for keras, got in zip(r["parity"]["keras"], r["parity"]["runtime"], strict=True):
            diff = math.inf if got is None else abs(got - keras)
            e = hi_exp if diff == math.inf else max(lo_exp, min(hi_exp, math.log10(diff)
                                                                if diff > 0 else lo_exp))
            marks.append((x(e), mid))
        parts.append(f'<path d="{_dots(marks)}" stroke="{color}" stroke-opacity="0.5" {DOT}/>')
        atol = r["tolerance"].get("atol", 0)
        if atol > 0:
            e = max(lo_exp, min(hi_exp, math.log10(atol)))
            parts.append(f'<line x1="{x(e):.1f}" y1="{top + 1}" x2="{x(e):.1f}" '
                         f'y2="{top + line - 1}" stroke="#222" stroke-width="1.5"/>')
    parts.append("</svg>")
    return "".join(parts)


def latency_svg(model: str, rows: list[dict]) -> str:
    """p50 bars with p90..p99 whiskers, and each runtime's floor, on a log axis."""
    if not rows:
        return ""
    left, width, line = 190, 520, 18
    values = [v for r in rows for v in (r["p50"], r.get("p99") or r["p50"], r.get("floor") or
                                        r["p50"]) if v and v > 0]
    lo = math.floor(math.log10(min(values)))
    hi = math.ceil(math.log10(max(values)))
    hi = hi if hi > lo else lo + 1
    x = _scale(lo, hi, left, left + width)
    height = 30 + line * len(rows)
    parts = [f'<svg viewBox="0 0 {left + width + 50} {height}" width="{left + width + 50}" '
             f'height="{height}" role="img" aria-label="latency, {esc(model)}">']
    for e in range(lo, hi + 1):
        parts.append(f'<line x1="{x(e):.1f}" y1="4" x2="{x(e):.1f}" y2="{height - 18}" '
                     f'stroke="#e3e3e3"/><text x="{x(e):.1f}" y="{height - 6}" font-size="9" '
                     f'text-anchor="middle">{10 ** e:g} µs</text>')
    for k, r in enumerate(rows):
        top = 6 + k * line
        parts.append(f'<text x="{left - 6}" y="{top + 11}" font-size="9" text-anchor="end">'
                     f'{esc(r["runtime"])}</text>')
        if r.get("floor"):
            parts.append(f'<rect x="{left}" y="{top + 11}" width="{x(math.log10(r["floor"])) - left:.1f}" '
                         'height="4" fill="#b0b0b0"/>')
        parts.append(f'<rect x="{left}" y="{top + 2}" width="{x(math.log10(r["p50"])) - left:.1f}" '
                     f'height="8" fill="{COLORS[0]}"/>')
        if r.get("p90") and r.get("p99"):
            parts.append(f'<line x1="{x(math.log10(r["p90"])):.1f}" y1="{top + 6}" '
                         f'x2="{x(math.log10(r["p99"])):.1f}" y2="{top + 6}" stroke="#222"/>')
    parts.append("</svg>")
    return "".join(parts)


def scaling_svg(model: str, rows: list[dict]) -> str:
    """p50 against sequence length, log-log, one line per form and runtime."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for r in rows:
        if r["p50_us"]:
            lines.setdefault(f'{r["form"]} on {r["runtime"]}', []).append((r["length"], r["p50_us"]))
    if not lines:
        return ""
    left, width, top, height = 50, 420, 10, 200
    lengths = [n for pts in lines.values() for n, _ in pts]
    times = [t for pts in lines.values() for _, t in pts]
    x = _scale(math.log10(min(lengths)), math.log10(max(lengths)) or 1, left, left + width)
    lo, hi = math.floor(math.log10(min(times))), math.ceil(math.log10(max(times)))
    hi = hi if hi > lo else lo + 1
    y = _scale(lo, hi, top + height, top)
    parts = [f'<svg viewBox="0 0 {left + width + 230} {top + height + 30}" '
             f'width="{left + width + 230}" height="{top + height + 30}" role="img" '
             f'aria-label="latency against sequence length, {esc(model)}">',
             f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="#fafafa" '
             'stroke="#ccc"/>']
    for e in range(lo, hi + 1):
        parts.append(f'<text x="{left - 4}" y="{y(e) + 3:.1f}" font-size="9" '
                     f'text-anchor="end">{10 ** e:g} µs</text>')
    for n in sorted(set(lengths)):
        parts.append(f'<text x="{x(math.log10(n)):.1f}" y="{top + height + 12}" font-size="9" '
                     f'text-anchor="middle">T={n}</text>')
    for k, (label, pts) in enumerate(sorted(lines.items())):
        pts = sorted(pts)
        color = COLORS[k % len(COLORS)]
        path = " ".join(f"{x(math.log10(n)):.1f},{y(math.log10(t)):.1f}" for n, t in pts)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        parts.append(f'<text x="{left + width + 8}" y="{top + 10 + 12 * k}" font-size="9" '
                     f'fill="{color}">{esc(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# The page.

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1d;
background:#fff}
header{background:#1d3557;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:#dbe4ee}main{padding:8px 28px 40px;max-width:1400px}
h2{border-bottom:2px solid #1d3557;padding-bottom:3px;margin-top:34px}h3{margin:22px 0 8px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:12.5px}
th,td{border-bottom:1px solid #e3e3e3;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f4f8;position:sticky;top:0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1b7f3b;font-weight:600}.fail{color:#c1121f;font-weight:700}.unknown{color:#8a6d00}
.bad{background:#fde2e4}.stale{background:#fff3c4}code,.mono{font-family:ui-monospace,Menlo,monospace;
font-size:12px}.card{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:14px}
.card>div{border:1px solid #dde3ea;border-radius:6px;padding:8px 12px;background:#fbfcfd}
.card h4{margin:2px 0 6px}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:0}
dt{color:#555}dd{margin:0}.where{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));
gap:14px}.where>div{border-left:4px solid #2a6f97;padding:6px 12px;background:#f6f9fc}
.targets td,.targets th{padding:1px 6px;white-space:nowrap;font-size:12px}
.parities{display:flex;flex-wrap:wrap;gap:6px}figure.parity{margin:0;font-size:10.5px;width:150px}
.missing{border:1px solid #f2a541;background:#fff8eb;padding:8px 14px;border-radius:6px}
.summary span{margin-right:18px}details summary{cursor:pointer;color:#2a6f97}
nav a{color:#fff;margin-right:14px}
"""


def render(inputs: Inputs) -> str:
    doc = inputs.manifest
    verify = inputs.verify or {}
    bench = inputs.bench or {}
    directory = str(inputs.directory)
    kind = "convert" if "length" not in doc else "export"
    verify_rows = verify.get("results", [])
    bench_rows = bench.get("rows", [])
    missing = [why for why in (inputs.verify_why, inputs.bench_why, inputs.scaling_why) if why]
    for r in verify_rows + bench_rows:
        problem = row_problem(doc, r)
        if problem:
            r["_stale"] = problem  # read by every section that shows or chooses from the row
    stale = sum("_stale" in r for r in verify_rows + bench_rows)
    if stale:
        missing.append(f"{stale} result row(s) were made for files this export no longer holds "
                       "(marked in yellow): run verify and bench again, or `report --run`")
    passed = verify.get("passed") if verify else None
    intact = inputs.files_checked - len(inputs.integrity)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No request may leave the page: not even a favicon.
        '<link rel="icon" href="data:,">',
        f"<title>edge-echo report: {esc(directory)}</title><style>{CSS}</style></head><body>",
        "<header>",
        f"<h1>edge-echo report: <span class=mono>{esc(directory)}</span></h1>",
        f"<p>{len(doc['models'])} model(s) from <code>edge-echo {esc(kind)}</code>, edge-echo "
        f"{esc(doc['versions'].get('edge-echo', '?'))}. Which file goes on which device, how "
        "closely each runtime reproduces Keras, and what each costs.</p>",
        '<p class="summary">'
        f'<span id="verdict" data-value="{esc(json.dumps(passed))}">verify: {verdict(passed)}'
        f"{'' if not verify else f' ({len(verify_rows)} model x runtime checks)'}</span>"
        f'<span id="integrity" data-intact="{intact}" data-checked="{inputs.files_checked}">'
        f"integrity: {intact} of {inputs.files_checked} files intact</span>"
        f"<span>bench: {'included' if bench else 'not included'}</span></p>",
        "<nav>" + "".join(f'<a href="#model-{esc(n)}">{esc(n)}</a>' for n in doc["models"])
        + '<a href="#reproducibility">reproducibility</a></nav>',
        "</header><main>",
    ]
    if inputs.integrity:
        out.append('<div class="missing" id="integrity-failures"><b>Failed integrity:</b><ul>'
                   + "".join(f"<li><code>{esc(f)}</code>: {esc(why)}</li>"
                             for f, why in inputs.integrity.items()) + "</ul></div>")
    if missing:
        out.append('<div class="missing" id="not-included"><b>Not included, and why:</b><ul>'
                   + "".join(f"<li>{esc(why)}</li>" for why in missing) + "</ul></div>")
    for name, entry in doc["models"].items():
        out.append(_model_section(inputs, name, entry,
                                  [r for r in verify_rows if r["model"] == name],
                                  [r for r in bench_rows if r["model"] == name]))
    out.append(_guarded(_reproducibility, inputs))
    out.append("</main></body></html>\n")
    return "\n".join(out)


def _artifact(doc: dict, model: str, file: str) -> dict | None:
    entry = doc["models"].get(model)
    if entry is None:
        return None
    return next((a for a in entry["artifacts"].values() if a["file"] == file), None)


def _guarded(part, *args) -> str:
    """One part of the page; a results file or manifest of an unexpected shape (edited by hand,
    or by another tool) costs that part, named, never the page."""
    try:
        return part(*args)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        what = part.__name__.strip("_")
        return (f'<p class="missing" data-broken="{esc(what)}">This part ({esc(what)}) could not '
                f"be drawn from the files given: {esc(type(exc).__name__)} {esc(exc)}.</p>")


def _model_section(inputs: Inputs, name: str, entry: dict, verify_rows: list[dict],
                   bench_rows: list[dict]) -> str:
    out = [f'<section id="model-{esc(name)}" data-model="{esc(name)}"><h2>{esc(name)}</h2>']
    out.append(_guarded(_card, entry))
    out.append("<h3>Which file where</h3>")
    out.append(_guarded(_where, inputs, name, entry, verify_rows, bench_rows))
    out.append("<h3>Files</h3>")
    out.append(_guarded(_files, inputs, name, entry))
    out.append("<h3>Verification against Keras</h3>")
    out.append(_guarded(_verification, name, verify_rows, inputs.verify))
    out.append("<h3>Performance</h3>")
    out.append(_guarded(_performance, inputs, name, entry, verify_rows, bench_rows))
    out.append("</section>")
    return "\n".join(out)


def _dl(pairs) -> str:
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs if v is not None) + "</dl>"


def _provenance(source) -> list[tuple[str, str]]:
    """Where a converted model came from (the manifest's source): format, writer, translation,
    renames, reference."""
    if not isinstance(source, dict):
        return []
    writer = " ".join(str(source[k]) for k in ("writer", "writer_version") if source.get(k))
    facts = [("format", esc(source.get("format", "-"))), ("written by", esc(writer or "-"))]
    if source.get("backend"):
        facts.append(("backend", esc(source["backend"])))
    translation = source.get("translation")
    if isinstance(translation, dict):
        check = translation.get("check", {})
        rules = "; ".join(translation.get("rules", [])) or "no argument needed changing"
        facts.append(("translated", esc(f"{translation.get('from')} -> {translation.get('to')}: "
                                        f"{rules}")))
        if check:
            facts.append(("translation check", esc(
                f"max |diff| {fmt(check.get('max_abs_diff'))} against {check.get('against')}")))
    renamed = source.get("renamed_layers")
    if isinstance(renamed, dict) and renamed:
        facts.append(("renamed layers", esc(", ".join(f"{k!r} -> {v!r}"
                                                      for k, v in renamed.items()))))
    facts.append(("reference", esc(source.get("reference", "-"))))
    return facts


def _card(entry: dict) -> str:
    spec = entry.get("spec", {})
    arch = [("layers", esc(", ".join(spec.get("layers", [])))),
            ("parameters", esc(fmt(spec.get("param_count"), "int")))]
    if "units" in spec:
        arch.append(("units", esc(spec["units"])))
    c = entry["artifacts"].get("c_source", {}).get("c", {})
    if c.get("layers"):
        arch.append(("as C layers", esc(", ".join(c["layers"]))))
    interface = []
    for direction in ("inputs", "outputs"):
        for io in entry[direction]:
            extra = f", vocabulary {io['vocabulary']}" if io.get("vocabulary") else ""
            interface.append((f"{direction[:-1]} {io['name']}",
                              f"<code>{esc(dims(io['shape']))}</code> {esc(io['dtype'])}{esc(extra)}"))
    facts = []
    training = entry.get("training")
    if training:
        facts += [("epochs", esc(spec.get("epochs"))), ("optimizer", esc(spec.get("optimizer"))),
                  ("loss", esc(spec.get("loss"))),
                  ("final loss", esc(fmt(training.get("final_loss")))),
                  ("seed", esc(entry.get("seed"))),
                  ("Keras echo", esc(" ".join(training.get("keras_echo", []))))]
        if spec.get("summary"):
            facts.append(("what it is", esc(spec["summary"])))
    else:
        facts += [("source", f"<code>{esc(spec.get('source'))}</code>"),
                  ("source sha256", f'<code title="{esc(spec.get("source_sha256"))}">'
                                    f'{esc(str(spec.get("source_sha256", ""))[:16])}…</code>'),
                  ("time steps", esc(spec.get("timesteps"))),
                  ("reference seed", esc(entry["artifacts"].get("reference", {})
                                         .get("random_inputs", {}).get("seed", "-")))]
        facts += _provenance(entry.get("source"))
    return ('<div class="card">'
            f"<div><h4>Architecture</h4>{_dl(arch)}</div>"
            f"<div><h4>Interface</h4>{_dl(interface)}</div>"
            f"<div><h4>{'Training' if training else 'Source'}</h4>{_dl(facts)}</div></div>")


def _contract(art: dict) -> str:
    """What a device app must do with this file: batch, reset, state, arena, resolver, C API."""
    items = []
    shape = (art.get("inputs") or [{}])[0].get("shape")
    if shape:
        items.append(("batch", "any" if shape[0] is None else str(shape[0])))
    micro = art.get("micro")
    if micro:
        items.append(("reset", micro["reset"]["when"] + "; " + micro["reset"]["tflm_cpp"]))
        items.append(("arena", f"{micro['arena_bytes']:,} bytes (minimum {micro['arena_min_bytes']:,})"))
        items.append(("resolver", " ".join(micro.get("resolver", []))))
    step = art.get("step")
    if step:
        items.append(("state", ", ".join(f"{s['input']} -> {s['output']} {dims(s['shape'])}"
                                         for s in step.get("state", [])) or "inside the file"))
        items.append(("reset", step.get("reset", "")))
    c = art.get("c")
    if c:
        items.append(("C API", "; ".join(c.get("api", []))))
        items.append(("state", f"{c.get('state_bytes', 0):,} bytes"))
        items.append(("reset", c.get("reset", "")))
        fp = c.get("footprint")
        if fp and "flash_bytes" in fp:
            items.append(("footprint", f"{fp['flash_bytes']:,} B flash, {fp['mutable_global_bytes']} "
                                       f"B globals, {fp['max_stack_frame_bytes']} B deepest frame"))
        for core, f in _target_figures(c).items():
            items.append((core, f.get("measured") or _target_line(f)))
    if art.get("arena_bytes"):
        items.append(("arena", f"{art['arena_bytes']:,} bytes"))
    if art.get("of"):
        items.append(("holds", art["of"]))
    return "<br>".join(f"<b>{esc(k)}</b>: {esc(v)}" for k, v in items) or "-"


def _target_figures(c: dict) -> dict[str, dict]:
    """Every device target's figures in a C contract (device.json's, put back): by target name,
    across the families (cortex_m, riscv, aarch64, wasm)."""
    return {core: f for family in c.values() if isinstance(family, dict)
            for core, f in (family.get("cores") or {}).items() if isinstance(f, dict)}


def _target_line(f: dict) -> str:
    if "wasm_bytes" in f:
        return (f"{f['wasm_bytes']:,} B .wasm + {f['loader_bytes']:,} B loader"
                + (f", p50 {fmt(f['p50_us'], 'us')} µs a predict in Node" if "p50_us" in f else ""))
    return (f"{f['flash_bytes']:,} B flash, {f['stack_bytes']:,} B stack, "
            f"{f['instructions_per_sequence']:,} instructions a sequence")


def _files(inputs: Inputs, name: str, entry: dict) -> str:
    rows = []
    for kind, art in entry["artifacts"].items():
        problem = inputs.integrity.get(art["file"])
        ops = art.get("operators") or {}
        op_text = (f"<details><summary>{sum(ops.values())} ops, {len(ops)} kinds</summary>"
                   + esc(", ".join(f"{k} x{v}" for k, v in ops.items())) + "</details>") if ops else "-"
        rows.append(
            f'<tr data-model="{esc(name)}" data-file="{esc(art["file"])}"'
            f'{" class=bad" if problem else ""}>'
            f"{text_cell(kind)}<td><code>{esc(art['file'])}</code></td>"
            f"{text_cell(art.get('format', '-'))}{text_cell(art.get('variant', '-'))}"
            + cell("size", art["size"], "int")
            + f'<td class="mono" title="{esc(art["sha256"])}">{esc(art["sha256"][:12])}…</td>'
            + f'<td data-field="integrity">{esc(problem) if problem else "intact"}</td>'
            + f"<td>{op_text}</td><td>{_contract(art)}</td></tr>")
    return ("<table><thead><tr><th>form</th><th>file</th><th>format</th><th>variant</th>"
            "<th>bytes</th><th>sha256</th><th>integrity</th><th>operators</th><th>contract</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            + _not_written(entry))


def _not_written(entry: dict) -> str:
    lines = entry.get("not_written") or {}
    if not lines:
        return ""
    return ("<p><b>Not written:</b></p><ul>"
            + "".join(f"<li><code>{esc(k)}</code>: {esc(v)}</li>" for k, v in lines.items()) + "</ul>")


def _verification(name: str, rows: list[dict], verify: dict | None) -> str:
    if verify is None:
        return "<p>Not verified (see <i>Not included</i> above).</p>"
    if not rows:
        return "<p>The verify results hold no row for this model.</p>"
    body = []
    has_top1 = any(r.get("top1") for r in rows)
    for r in rows:
        echo = r.get("echo")
        tol = r["tolerance"]
        css = " class=stale" if "_stale" in r else ""
        body.append(
            f'<tr data-table="verify" data-model="{esc(name)}" data-runtime="{esc(r["runtime"])}"{css}>'
            f"{text_cell(r['runtime'])}<td><code>{esc(r['file'])}</code></td>"
            + cell("max_abs", r["max_abs"]) + cell("max_rel", r.get("max_rel"))
            + cell("atol", tol.get("atol")) + cell("rtol", tol.get("rtol"))
            + cell("worst_diff_over_allowed", r["worst_diff_over_allowed"], "ratio")
            + (f'<td data-field="echo">{esc(" ".join(echo["printed"]))} '
               f"{verdict(echo['passed'])}</td>" if echo else '<td data-field="echo">-</td>')
            + (cell("top1_agreement", min(t["agreement"] for t in r["top1"]), "pct")
               if has_top1 and r.get("top1") else '<td data-field="top1_agreement">-</td>'
               if has_top1 else "")
            + cell("p50_us", r.get("p50_us"), "us")
            + f'<td data-field="passed" data-value="{esc(json.dumps(r["passed"]))}">'
            + verdict(r["passed"]) + (f" <i>{esc(r['_stale'])}</i>" if "_stale" in r else "")
            + "</td></tr>")
    parity = "".join(parity_svg(name, r["runtime"], r["parity"], r["passed"], r["max_abs"])
                     for r in rows if r.get("parity"))
    strip = error_strip_svg(name, rows)
    inputs_note = verify.get("inputs", {})
    return ("<table><thead><tr><th>runtime</th><th>file</th><th>max |diff|</th><th>max rel</th>"
            "<th>atol</th><th>rtol</th><th>worst/allowed</th><th>echo</th>"
            + ("<th>top-1 agreement</th>" if has_top1 else "") + "<th>p50 µs</th>"
            "<th>verdict</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>"
            "<p>worst/allowed: the worst element's |diff| over the error its tolerance allows it "
            "(atol + rtol x |expected|); above 1 fails. Inputs: "
            + esc("; ".join(f"{k}: {v}" for k, v in inputs_note.items())) + ".</p>"
            + _failures(rows)
            + (f"<p>|runtime - Keras| of the plotted points (log scale; the bar marks atol):</p>"
               f"{strip}" if strip else "")
            + (f"<p>Parity, runtime against Keras on the stored reference inputs (up to "
               f"{len(rows[0]['parity']['keras']) if rows[0].get('parity') else 0} points each, "
               "the worst included):</p>"
               f'<div class="parities">{parity}</div>' if parity else ""))


def _failures(rows: list[dict]) -> str:
    """verify's FAIL lines: the first of each failing runtime shown, every one a click away."""
    failing = [r for r in rows if r.get("failures")]
    if not failing:
        return ""
    first = "".join(f'<li class="fail">{esc(r["failures"][0])}</li>' for r in failing)
    every = "".join(f"<li>{esc(line)}</li>" for r in failing for line in r["failures"])
    count = sum(len(r["failures"]) for r in failing)
    return (f"<ul>{first}</ul><details><summary>all {count} failed checks</summary><ul>{every}"
            "</ul></details>")


def _performance(inputs: Inputs, name: str, entry: dict, verify_rows: list[dict],
                 bench_rows: list[dict]) -> str:
    out = []
    if bench_rows:
        body, bars = [], []
        for r in bench_rows:
            t, fl, mem = r["timing"], r["floor"], r["memory"]
            css = " class=stale" if "_stale" in r else ""
            body.append(
                f'<tr data-table="bench" data-model="{esc(name)}" data-runtime="{esc(r["runtime"])}"{css}>'
                f"{text_cell(r['runtime'])}<td><code>{esc(r['file'])}</code></td>"
                + cell("p50_us", t["p50_us"], "us") + cell("p90_us", t["p90_us"], "us")
                + cell("p99_us", t["p99_us"], "us") + cell("first_us", t["first_us"], "us")
                + cell("floor_p50_us", fl["p50_us"], "us")
                + cell("floor_ratio", r.get("floor_ratio"), "ratio")
                + cell("sequences_per_s", t["sequences_per_s"], "rate")
                + cell("file_bytes", mem.get("file_bytes"), "int")
                + cell("peak_rss_delta_bytes", mem.get("peak_rss_delta_bytes"), "int")
                + cell("arena_bytes", mem.get("arena_bytes"), "int") + "</tr>")
            bars.append({"runtime": r["runtime"], "p50": t["p50_us"], "p90": t["p90_us"],
                         "p99": t["p99_us"], "floor": fl["p50_us"]})
        settings = inputs.bench.get("settings", {})
        machine = inputs.bench.get("machine", {})
        out.append(
            "<table><thead><tr><th>runtime</th><th>file</th><th>p50 µs</th><th>p90</th><th>p99</th>"
            "<th>first call</th><th>floor p50</th><th>x floor</th><th>seq/s at batch "
            f"{esc(settings.get('batch', '?'))}</th><th>file B</th><th>peak RSS growth B</th>"
            "<th>TFLM arena B</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>"
            f"<p>Batch 1, {esc(settings.get('runs', '?'))} timed runs, "
            f"{esc(settings.get('threads', {}).get('requested', '?'))} thread(s), on "
            f"{esc(machine.get('cpu', '?'))}. Timed: {esc(settings.get('timed', ''))}. The floor is "
            "the same runtime running a trivial model: x floor is the model's own cost over one "
            f"call into the runtime. Memory: {esc(settings.get('memory', ''))}.</p>")
        out.append("<p>Latency (bar p50, line p90 to p99, grey the runtime's floor):</p>"
                   + latency_svg(name, bars))
    elif verify_rows and any(r.get("p50_us") for r in verify_rows):
        out.append("<p>No bench results (see <i>Not included</i>); the p50 verify measured "
                   "on the way is in the verification table:</p>")
        out.append(latency_svg(name, [{"runtime": r["runtime"], "p50": r["p50_us"]}
                                      for r in verify_rows if r.get("p50_us")]))
    else:
        out.append("<p>No latency figures (see <i>Not included</i>).</p>")
    if inputs.scaling is not None:
        rows = [r for r in inputs.scaling if r["model"] == name]
        if rows:
            lengths = sorted({r["length"] for r in rows})
            pairs = sorted({(r["form"], r["runtime"]) for r in rows})
            table = ["<table><thead><tr><th>form</th><th>runtime</th>"
                     + "".join(f"<th>p50 µs at T={n}</th>" for n in lengths)
                     + "</tr></thead><tbody>"]
            for form, runtime in pairs:
                by = {r["length"]: r for r in rows if (r["form"], r["runtime"]) == (form, runtime)}
                table.append(
                    f'<tr data-table="scaling" data-model="{esc(name)}" data-runtime="{esc(runtime)}" '
                    f'data-form="{esc(form)}">{text_cell(form)}{text_cell(runtime)}'
                    + "".join(cell(f"p50_us@{n}", by[n]["p50_us"] if n in by else None, "us")
                              for n in lengths) + "</tr>")
            table.append("</tbody></table>")
            out.append(f"<p>Growth with sequence length ({esc(rows[0]['family'])} family, "
                       "benchmarks/bench_scaling.py: the same architecture at each length):</p>"
                       + "".join(table) + scaling_svg(name, rows))
        else:
            out.append("<p>The scaling figures given hold no row for this model.</p>")
    return "\n".join(out)


def _where(inputs: Inputs, name: str, entry: dict, verify_rows: list[dict],
           bench_rows: list[dict]) -> str:
    """Which file to ship where, chosen from the measured figures: only files that passed
    verify and are intact count; each choice says which figure chose it."""
    if inputs.verify is None:
        return "<p>Needs verify results: no file is recommended before it is verified.</p>"
    p50 = {r["runtime"]: r["timing"]["p50_us"] for r in bench_rows if "_stale" not in r}
    good = [r for r in verify_rows if r["passed"] and "_stale" not in r
            and r["file"] not in inputs.integrity]

    def base(runtime: str) -> str:
        return runtime.split(":", 1)[0]

    def latency(r):
        return p50.get(r["runtime"], r.get("p50_us"))

    def size(r):
        art = _artifact(inputs.manifest, name, r["file"]) or {}
        return art.get("size", 0)

    def flash_ram(r):
        art = _artifact(inputs.manifest, name, r["file"]) or {}
        if art.get("micro"):
            return art["micro"]["flash_bytes"], art["micro"]["arena_bytes"], "flatbuffer + arena"
        c = art.get("c", {})
        fp = c.get("footprint")
        if fp and "flash_bytes" in fp:
            return (fp["flash_bytes"], c.get("state_bytes", 0) + fp["max_stack_frame_bytes"],
                    "code + state and deepest frame")
        return art.get("size", 0), None, "file"

    blocks = []
    phone = [r for r in good if base(r["runtime"]) in PHONE_RUNTIMES]
    micro = [r for r in good if base(r["runtime"]) in MICRO_RUNTIMES]
    stream = [r for r in good if base(r["runtime"]) in STREAM_RUNTIMES]

    def line(label, r, why):
        return (f'<li data-choice="{esc(label)}" data-runtime="{esc(r["runtime"])}" '
                f'data-file="{esc(r["file"])}"><b>{esc(label)}</b>: <code>{esc(r["file"])}</code> on '
                f"{esc(r['runtime'])}: {why}</li>")

    if phone:
        fast = min(phone, key=lambda r: (latency(r) or math.inf, size(r)))
        small = min(phone, key=lambda r: (size(r), latency(r) or math.inf))
        close = min(phone, key=lambda r: (r["worst_diff_over_allowed"], latency(r) or math.inf))
        items = [line("fastest", fast, f"p50 {esc(fmt(latency(fast), 'us'))} µs, the lowest of "
                      f"{len(phone)} passing files"),
                 line("smallest", small, f"{size(small):,} bytes, max |diff| "
                      f"{esc(fmt(small['max_abs']))}"),
                 line("closest to Keras", close, "worst/allowed "
                      f"{esc(fmt(close['worst_diff_over_allowed'], 'ratio'))}, "
                      f"max |diff| {esc(fmt(close['max_abs']))}")]
        blocks.append("<div><h4>Phone or gateway (LiteRT, ONNX Runtime)</h4><ul>" + "".join(items)
                      + "</ul></div>")
    else:
        blocks.append("<div><h4>Phone or gateway</h4><p>No passing file for LiteRT or ONNX "
                      "Runtime.</p></div>")
    if micro:
        def total(r):
            flash, ram, _ = flash_ram(r)
            return flash + (ram or 0)

        best = min(micro, key=lambda r: (total(r), latency(r) or math.inf))
        least_ram = min(micro, key=lambda r: (flash_ram(r)[1] or math.inf, total(r)))
        flash, ram, what = flash_ram(best)
        items = [line("least memory", best, f"{flash:,} B flash + {ram or 0:,} B RAM ({esc(what)}), "
                      f"of {len(micro)} passing device files"),
                 line("least RAM", least_ram, f"{flash_ram(least_ram)[1] or 0:,} B RAM "
                      f"({esc(flash_ram(least_ram)[2])})")]
        # A core with no FPU (Cortex-M0): the passing C file that takes the fewest instructions
        # there (the integer C, NAME.int8.c, where it was written).
        def m0_instructions(r):
            art = _artifact(inputs.manifest, name, r["file"]) or {}
            core = _target_figures(art.get("c", {})).get("cortex-m0", {})
            return core.get("instructions_per_sequence")

        m0 = [r for r in good if base(r["runtime"]) == "c@cortex-m0" and m0_instructions(r)]
        if m0:
            cheap = min(m0, key=m0_instructions)
            items.append(line("core without an FPU", cheap, f"{m0_instructions(cheap):,} "
                              f"instructions a sequence on Cortex-M0, the fewest of {len(m0)} "
                              "passing C files"))
        if any(base(r["runtime"]) != "c" for r in micro):
            items.append("<li>TFLM files also need the TFLM library in flash (not counted); the C "
                         "source needs no runtime.</li>")
        blocks.append("<div><h4>Microcontroller (TFLM, plain C)</h4><ul>" + "".join(items)
                      + "</ul></div>")
    else:
        blocks.append("<div><h4>Microcontroller</h4><p>No passing micro or C file.</p></div>")
    # In JavaScript: the files that passed in the browser and in Node, and the C source's .wasm.
    web = [r for r in good if base(r["runtime"]) in WEB_RUNTIMES]
    node = [r for r in good if base(r["runtime"]) in NODE_RUNTIMES]
    wasm = [r for r in good if r["runtime"] == "c@wasm32"]
    if web or node or wasm:
        items = []
        if web:
            fast = min(web, key=lambda r: (latency(r) or math.inf, size(r)))
            small = min(web, key=lambda r: (size(r), latency(r) or math.inf))
            items += [line("web, fastest", fast, f"p50 {esc(fmt(latency(fast), 'us'))} µs in "
                           f"headless Chromium, the lowest of {len(web)} passing files"),
                      line("web, smallest", small, f"{size(small):,} bytes to download, max |diff| "
                           f"{esc(fmt(small['max_abs']))}")]
        if wasm:
            r = wasm[0]
            art = _artifact(inputs.manifest, name, r["file"]) or {}
            loader = (_artifact(inputs.manifest, name, art.get("wasm", {}).get("loader", "")) or {})
            items.append(line("web, no runtime", r, f"the C source as WebAssembly, {size(r):,} + "
                              f"{loader.get('size', 0):,} bytes (module + loader), no library"))
        if node:
            fast = min(node, key=lambda r: (latency(r) or math.inf, size(r)))
            items.append(line("Node, fastest", fast, f"p50 {esc(fmt(latency(fast), 'us'))} µs, the "
                              f"lowest of {len(node)} passing files"))
        blocks.append("<div><h4>Web page or Node app (ONNX Runtime Web and Node, LiteRT.js)</h4>"
                      "<ul>" + "".join(items) + "</ul></div>")
    else:
        blocks.append("<div><h4>Web page or Node app</h4><p>No file passed on a JavaScript "
                      "runtime (make js installs them).</p></div>")
    # The C source (and its .wasm) verified on each device target: the target's own figures,
    # one compact row each.
    device = [r for r in good if "@" in r["runtime"] and not r["runtime"].startswith("c-step@")]
    if device:
        rows = []
        for r in device:
            target = r["runtime"].partition("@")[2]
            art = _artifact(inputs.manifest, name, r["file"]) or {}
            f = _target_figures(art.get("c", {})).get(target, {})
            if "wasm_bytes" in f:  # the .wasm (its loader apart), timed in Node by bench
                flash, stack = f"{f['wasm_bytes']:,}", "-"
                timed = next((d for d in (inputs.bench or {}).get("device", [])
                              if isinstance(d, dict) and d.get("model") == name
                              and d.get("core") == target and d.get("sha256") == art.get("sha256")
                              and "p50_us" in d), None)
                work = f"{fmt(timed['p50_us'], 'us')} µs" if timed else "-"
            elif "instructions_per_sequence" in f:
                flash, stack = f"{f['flash_bytes']:,}", f"{f['stack_bytes']:,}"
                work = f"{f['instructions_per_sequence']:,}"
            else:
                flash = stack = work = "-"
            rows.append(f'<tr data-choice="{esc(target)}" data-runtime="{esc(r["runtime"])}" '
                        f'data-file="{esc(r["file"])}" title="{esc(r["file"])}">'
                        f"<td>{esc(target)}</td><td class=num>{esc(flash)}</td>"
                        f"<td class=num>{esc(stack)}</td><td class=num>{esc(work)}</td></tr>")
        blocks.append("<div><h4>Device targets (the C source where it runs)</h4>"
                      "<table class=targets><tr><th>target</th><th>flash B</th><th>stack B</th>"
                      "<th>instr./seq.</th></tr>" + "".join(rows) + "</table><p>Each "
                      "passed verify against Keras on its emulator; wasm32 is the .wasm in Node "
                      "(its bytes, and bench's p50 of a predict).</p></div>")
    if stream:
        fast = min(stream, key=lambda r: (latency(r) or math.inf, size(r)))
        items = [line("streaming", fast, f"one step at a time with the state carried between calls; "
                      f"p50 {esc(fmt(latency(fast), 'us'))} µs for a whole sequence stepped, the "
                      f"lowest of {len(stream)} passing step files")]
        blocks.append("<div><h4>Streaming (one value at a time)</h4><ul>" + "".join(items)
                      + "</ul></div>")
    else:
        blocks.append("<div><h4>Streaming</h4><p>No passing step file.</p></div>")
    return ('<div class="where">' + "".join(blocks) + "</div><p>Chosen from the figures on this "
            "page: only files that passed verify and are intact count; latency is bench's p50 "
            "where bench ran, else verify's.</p>")


def _reproducibility(inputs: Inputs) -> str:
    doc = inputs.manifest
    sources = {"export": doc.get("versions", {})}
    if inputs.verify:
        sources["verify"] = inputs.verify.get("versions", {})
    if inputs.bench:
        sources["bench"] = inputs.bench.get("versions", {})
    names = list(dict.fromkeys(k for v in sources.values() for k in v))
    rows = []
    for tool in names:
        values = [v.get(tool) for v in sources.values()]
        differ = len({x for x in values if x is not None}) > 1
        rows.append(f'<tr{" class=stale" if differ else ""}>{text_cell(tool)}'
                    + "".join(_version_cell(v) for v in values) + "</tr>")
    command = doc.get("command")
    if command:
        words = list(command)
        at = 3 if words[1] == "convert" else 2  # after convert's model file
        words[at:at] = ["--out", str(inputs.directory)]
        shown = " ".join(shlex.quote(w) for w in words)
        made = f"<p>Made by <code id=command>{esc(shown)}</code></p>"
    else:
        made = "<p>The manifest does not record the command that made it (an older edge-echo).</p>"
    seeds = ", ".join(f"{n}: {m.get('seed', '-')}" for n, m in doc["models"].items())
    checks = ""
    if inputs.verify:
        v = inputs.verify
        checks = (f"<p>verify: {esc(v.get('samples'))} fresh samples at seed {esc(v.get('seed'))}, "
                  f"batch sizes {esc(v.get('batch_sizes'))}, "
                  f"{'live Keras' if v.get('keras') else 'Keras outputs stored at export (--no-keras)'}"
                  "</p>")
    return ('<section id="reproducibility"><h2>Reproducibility</h2>' + made
            + f"<p>Seed per model: {esc(seeds)}.</p>" + checks
            + "<table><thead><tr><th>tool</th>" + "".join(f"<th>{esc(k)}</th>" for k in sources)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            "<p>A yellow row: the results were made with other versions than the export (an "
            "upgraded edge-echo verifying older files, say); the sha256 of every file they ran is "
            "checked against the manifest apart.</p></section>")


def _version_cell(value) -> str:
    if value is None:
        return '<td class="mono">-</td>'
    text = str(value)
    shown = text if len(text) <= 24 else text[:16] + "…"
    return f'<td class="mono" title="{esc(text)}">{esc(shown)}</td>'


def write(inputs: Inputs, path: Path) -> int:
    """Write the page atomically; returns its size in bytes."""
    from .fsutil import write_file

    text = render(inputs).encode("utf-8")
    try:
        write_file(path, text)
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot write the report ({exc.strerror})") from None
    return len(text)
