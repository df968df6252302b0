"""Issue 25: edge-echo report, one self-contained HTML page per export, checked in a real browser.

The page is made from real verify and bench runs of the full session export (every default form,
the C source and the quantized variants). The browser tests load it in headless Chromium
(Debian's chromium, driven by Playwright) from the file, offline, and compare every figure in
the DOM with the JSON it came from; they skip, with the reason, where there is no browser.
"""

from __future__ import annotations

import copy
import html.parser
import io
import json
import math
import shutil
from pathlib import Path

import pytest
from conftest import rehash

from edge_echo import browser, manifest, targets
from edge_echo import report as report_mod
from edge_echo.bench import bench
from edge_echo.cli import app
from edge_echo.runners import RUNNERS
from edge_echo.verify import verify

PAGE_TARGETS = ("cortex-m4", "riscv32imafc", "wasm32")
# The page lists the JavaScript runtimes like the others (issue 36): they run here.
pytestmark = pytest.mark.js


@pytest.fixture(scope="module")
def measured(full_export, tmp_path_factory) -> Path:
    """A copy of the full export with verify.json and bench.json beside it, as make run leaves it."""
    source, _ = full_export
    target = tmp_path_factory.mktemp("report") / "exported"
    shutil.copytree(source, target)
    # A device target of three families: the page treats them all alike.
    checked = verify(target, keras=False, latency_runs=30, cores=PAGE_TARGETS)
    (target / "verify.json").write_text(json.dumps(checked.to_dict()))
    timed = bench(target, runs=30, warmup=3, predict_runs=2, memory=False, cores=PAGE_TARGETS)
    (target / "bench.json").write_text(json.dumps(timed.to_dict()))
    return target


def make_copy(measured: Path, tmp_path: Path) -> Path:
    target = tmp_path / "exported"
    shutil.copytree(measured, target)
    return target


def page_of(directory: Path, cli, *extra) -> str:
    result = cli("report", directory, *extra)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return (directory / "report.html").read_text(encoding="utf-8")


class Outside(html.parser.HTMLParser):
    """Every reference a page makes to anything but itself: src, href and CSS url(), and any
    script or stylesheet link (the page has no script at all)."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._style = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.found.append("<script>")
        self._style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href", "srcset", "action", "poster", "data") and value and \
                    not value.startswith("#") and value != "data:,":
                self.found.append(f"{tag} {name}={value}")
            if name.startswith("on"):
                self.found.append(f"{tag} {name}")

    def handle_data(self, data):
        if self._style and ("url(" in data or "@import" in data):
            self.found.append("CSS url() or @import")

    def handle_endtag(self, tag):
        self._style = False


def outside(page: str) -> list[str]:
    parser = Outside()
    parser.feed(page)
    return parser.found


def test_the_page_is_self_contained(measured, tmp_path, cli):
    page = page_of(make_copy(measured, tmp_path), cli)
    assert outside(page) == []
    assert page.count("<svg") >= 3 * 3  # per model: the error strip, parities, latency
    assert "<style>" in page
    # The check finds what it looks for.
    assert outside(page.replace("<body>", '<body><img src="https://example.com/x.png">')) == [
        "img src=https://example.com/x.png"]
    assert outside(page.replace("</style>", "</style><script>1</script>")) == ["<script>"]


def test_report_says_what_it_could_not_include(full_export, tmp_path, cli):
    source, _ = full_export
    directory = tmp_path / "bare"
    shutil.copytree(source, directory)
    page = page_of(directory, cli)
    assert "no verify results: run `edge-echo verify" in page
    assert "no bench results: run `edge-echo bench" in page
    assert "no sequence-length scaling figures" in page
    assert "Needs verify results: no file is recommended before it is verified." in page
    # Files and their contracts need no results.
    assert "AddUnidirectionalSequenceLSTM()" in page and "many_to_one_predict" in page

    (directory / "verify.json").write_text("{not json")
    (directory / "bench.json").write_text(json.dumps({"rows": []}))
    result = cli("report", directory, "--scaling", tmp_path / "nowhere.json")
    assert result.exit_code == 0 and "Traceback" not in result.output
    page = (directory / "report.html").read_text()
    assert "verify.json is not readable JSON" in page
    assert "bench.json is not edge-echo-bench JSON" in page
    assert "nowhere.json does not exist" in page
    assert "3 part(s) not included" in result.stdout


def test_a_newer_schema_is_refused_on_the_page(measured, tmp_path, cli):
    directory = make_copy(measured, tmp_path)
    doc = json.loads((directory / "verify.json").read_text())
    doc["schema"]["version"] = 2
    (directory / "verify.json").write_text(json.dumps(doc))
    page = page_of(directory, cli)
    assert "has edge-echo-verify schema version 2; this edge-echo reads version 1" in page


def test_altered_and_missing_files_show_as_failed_integrity(measured, tmp_path, cli):
    directory = make_copy(measured, tmp_path)
    page = page_of(directory, cli)
    assert 'id="integrity-failures"' not in page
    choice = _choices(page)["many-to-one"]["fastest"]
    altered = directory / choice["data-file"]
    altered.write_bytes(altered.read_bytes()[:-1] + b"\0")
    (directory / "many-to-many.micro.tflite").unlink()
    result = cli("report", directory)
    assert result.exit_code == 0, result.output
    page = (directory / "report.html").read_text()
    assert 'id="integrity-failures"' in page
    assert f"<code>{altered.name}</code>: altered: sha256 does not match the manifest" in page
    assert "<code>many-to-many.micro.tflite</code>: missing" in page
    total = sum(len(m["artifacts"]) for m in manifest.load(directory)["models"].values())
    assert f"{total - 2} of {total} files intact" in page
    # An altered file is never recommended.
    assert _choices(page)["many-to-one"]["fastest"]["data-file"] != altered.name


def _choices(page: str) -> dict[str, dict[str, dict]]:
    """model -> choice -> {file, runtime}, read from the page's data attributes."""
    class Reader(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.model, self.found = None, {}

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "section" and "data-model" in attrs:
                self.model = attrs["data-model"]
            if "data-choice" in attrs:
                self.found.setdefault(self.model, {})[attrs["data-choice"]] = attrs

    reader = Reader()
    reader.feed(page)
    return reader.found


def test_which_file_where_follows_the_figures(measured, tmp_path, cli):
    """Change the measured figures and the choices follow them: nothing is hard-coded."""
    directory = make_copy(measured, tmp_path)
    before = _choices(page_of(directory, cli))
    assert set(before) == {"one-to-one", "many-to-one", "many-to-many"}
    for model in before.values():
        assert {"fastest", "smallest", "closest to Keras", "least memory", "least RAM",
                "streaming"} <= set(model)
        # Each device target verified here, with its file: the C source, or the .wasm in Node.
        here = [t for t in PAGE_TARGETS if not targets.unavailable(t)]
        assert {t: model[t]["data-runtime"] for t in PAGE_TARGETS if t in model} == \
            {t: f"c@{t}" for t in here}
        for t in here:
            assert model[t]["data-file"].endswith(".wasm" if t == "wasm32" else ".c")
        # The web column: the fastest and smallest file in the browser, the .wasm, and Node's.
        web = {"web, fastest": ("onnxruntime-web", "litertjs"), "web, smallest": ("onnxruntime-web",
               "litertjs"), "Node, fastest": ("onnxruntime-node",)}
        for choice, runtimes in web.items():
            if not all(RUNNERS[rt].unavailable() for rt in runtimes):
                assert model[choice]["data-runtime"].startswith(runtimes), model[choice]
        if "wasm32" in here:
            assert model["web, no runtime"]["data-file"].endswith(".wasm")
    fastest = before["many-to-one"]["fastest"]
    # Make another phone file the fastest in bench's figures.
    doc = json.loads((directory / "bench.json").read_text())
    other = next(r for r in doc["rows"] if r["model"] == "many-to-one"
                 and r["runtime"] == ("onnxruntime" if fastest["data-runtime"] != "onnxruntime"
                                      else "litert"))
    other["timing"]["p50_us"] = 0.001
    (directory / "bench.json").write_text(json.dumps(doc))
    after = _choices(page_of(directory, cli))
    assert after["many-to-one"]["fastest"]["data-runtime"] == other["runtime"]
    # A failing runtime is never chosen.
    checked = json.loads((directory / "verify.json").read_text())
    for r in checked["results"]:
        if r["model"] == "many-to-one" and r["runtime"] == other["runtime"]:
            r["passed"] = False
    (directory / "verify.json").write_text(json.dumps(checked))
    again = _choices(page_of(directory, cli))
    assert again["many-to-one"]["fastest"]["data-runtime"] != other["runtime"]


def test_results_for_other_bytes_are_marked_stale(measured, tmp_path, cli):
    directory = make_copy(measured, tmp_path)
    path = directory / "many-to-one.onnx"
    path.write_bytes(path.read_bytes() + b" ")
    rehash(directory, path.name)  # a new, intact file: the results were for the old one
    page = page_of(directory, cli)
    assert "result row(s) were made for files this export no longer holds" in page
    assert "measured on other bytes than the file the manifest lists now" in page
    inputs = report_mod.gather(directory)
    assert report_mod.out_of_date(inputs) == {
        "verify": "made for other files than the manifest lists",
        "bench": "made for other files than the manifest lists"}


def test_bad_arguments_are_one_line(tmp_path, measured, cli):
    result = cli("report", tmp_path / "nothing")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no such directory" in result.stderr
    result = cli("report", measured, "-o", tmp_path / "no" / "such" / "dir" / "r.html")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "cannot write the report" in result.stderr


def test_the_command_that_made_the_export_is_recorded_and_parses(full_export):
    """The recorded command is what the CLI itself accepts, with the options the export used."""
    source, _ = full_export
    doc = manifest.load(source)
    words = doc["command"]
    assert words[:2] == ["edge-echo", "export"]
    import typer.main

    command = typer.main.get_command(app).commands["export"]
    params = command.make_context("export", [*words[2:], "--out", "somewhere"]).params
    assert params["c_array"] and params["c_source"]
    assert params["seed"] == doc["seed"] and params["length"] == doc["length"]
    assert ",".join(params["models"]) == ",".join(doc["models"])
    assert "tflite:int8" in params["quantize"][0] and "onnx:dynamic" in params["quantize"][0]


# ---------------------------------------------------------------------------------------------
# In a real browser.

needs_browser = pytest.mark.skipif(browser.why() is not None, reason=str(browser.why()))

# Every row of figures on the page: its table, model and runtime, and per field the exact value
# (data-value) and the text shown.
DOM_ROWS = """() => Array.from(document.querySelectorAll('tr[data-table]')).map(tr => ({
  table: tr.dataset.table, model: tr.dataset.model, runtime: tr.dataset.runtime,
  form: tr.dataset.form || null,
  fields: Object.fromEntries(Array.from(tr.querySelectorAll('[data-field]')).map(td =>
      [td.dataset.field, {value: td.dataset.value === undefined ? null : JSON.parse(td.dataset.value),
                          text: td.innerText.trim()}]))}))"""

VERIFY_FIELDS = {"max_abs": lambda r: r["max_abs"], "max_rel": lambda r: r["max_rel"],
                 "atol": lambda r: r["tolerance"]["atol"], "rtol": lambda r: r["tolerance"]["rtol"],
                 "worst_diff_over_allowed": lambda r: r["worst_diff_over_allowed"],
                 "p50_us": lambda r: r["p50_us"], "passed": lambda r: r["passed"]}
BENCH_FIELDS = {"p50_us": lambda r: r["timing"]["p50_us"], "p90_us": lambda r: r["timing"]["p90_us"],
                "p99_us": lambda r: r["timing"]["p99_us"],
                "first_us": lambda r: r["timing"]["first_us"],
                "floor_p50_us": lambda r: r["floor"]["p50_us"],
                "floor_ratio": lambda r: r["floor_ratio"],
                "sequences_per_s": lambda r: r["timing"]["sequences_per_s"],
                "file_bytes": lambda r: r["memory"]["file_bytes"],
                "peak_rss_delta_bytes": lambda r: r["memory"]["peak_rss_delta_bytes"],
                "arena_bytes": lambda r: r["memory"]["arena_bytes"]}


def mismatches(dom: list[dict], verify_doc: dict, bench_doc: dict) -> list[str]:
    """Every model x runtime of the JSON must be on the page once, each figure exactly (the
    data-value) and as shown (the text, to the digits it shows)."""
    wrong = []
    for table, rows, fields in (("verify", verify_doc["results"], VERIFY_FIELDS),
                                ("bench", bench_doc["rows"], BENCH_FIELDS)):
        on_page = [d for d in dom if d["table"] == table]
        if len(on_page) != len(rows):
            wrong.append(f"{table}: {len(on_page)} rows on the page, {len(rows)} in the JSON")
        for row in rows:
            found = [d for d in on_page if (d["model"], d["runtime"]) == (row["model"], row["runtime"])]
            if len(found) != 1:
                wrong.append(f"{table} {row['model']}/{row['runtime']}: {len(found)} rows on the page")
                continue
            for name, get in fields.items():
                want, got = get(row), found[0]["fields"].get(name)
                if isinstance(want, float) and not math.isfinite(want):
                    want = str(want)  # the page keeps infinity and NaN as text
                where = f"{table} {row['model']}/{row['runtime']} {name}"
                if got is None:
                    wrong.append(f"{where}: not on the page")
                elif got["value"] != want:
                    wrong.append(f"{where}: page {got['value']!r}, JSON {want!r}")
                elif not shown_as(got["text"], want):
                    wrong.append(f"{where}: shown as {got['text']!r} for {want!r}")
    return wrong


def shown_as(text: str, value) -> bool:
    if value is None:
        return text == "-"
    if isinstance(value, str):
        return text == value
    if isinstance(value, bool):
        return text.startswith("pass" if value else "FAIL")
    # Within half a unit of the last digit shown: "0.0029" for 0.00287, "1.8e-07" for 1.79e-07.
    number = text.replace(",", "")
    mantissa, _, exponent = number.partition("e")
    decimals = len(mantissa.partition(".")[2])
    half = 0.5 * 10.0 ** (int(exponent or 0) - decimals)
    return abs(float(number) - value) <= half * (1 + 1e-9)


def load_page(page_file: Path, javascript: bool = True):
    """(dom rows, requests made, console and page errors, screenshot PNG bytes, text)."""
    requests, problems = [], []
    # One Playwright per process, shared with the JavaScript runtimes' host (jshost).
    chromium = browser.launch(browser.playwright())
    try:
        context = chromium.new_context(offline=True, java_script_enabled=javascript,
                                       viewport={"width": 1400, "height": 1000})
        page = context.new_page()

        def route(r):
            requests.append(r.request.url)
            if r.request.url == page_file.as_uri():
                r.continue_()
            else:
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.goto(page_file.as_uri(), wait_until="load")
        # With JavaScript off, the DOM is read from this side: the page has no script anyway.
        dom = page.evaluate(DOM_ROWS) if javascript else None
        shot = page.screenshot(full_page=False)
        text = page.inner_text("body")
    finally:
        chromium.close()
    return dom, requests, problems, shot, text


@pytest.fixture(scope="module")
def loaded(measured, tmp_path_factory):
    directory = tmp_path_factory.mktemp("page") / "exported"
    shutil.copytree(measured, directory)
    scaling = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "scaling.json"
    inputs = report_mod.gather(directory, scaling_file=scaling)
    report_mod.write(inputs, directory / "report.html")
    return directory, load_page(directory / "report.html")


@needs_browser
def test_the_page_loads_offline_with_no_request_and_no_error(loaded):
    directory, (dom, requests, problems, shot, text) = loaded
    assert requests == [(directory / "report.html").as_uri()]
    assert problems == []
    assert "edge-echo report" in text and "Which file where" in text


@needs_browser
def test_the_screenshot_is_not_blank(loaded):
    import numpy as np
    from matplotlib import image

    _, (_, _, _, shot, _) = loaded
    pixels = image.imread(io.BytesIO(shot), format="png")[..., :3]
    assert pixels.shape[:2] == (1000, 1400)
    assert not looks_blank(pixels)
    # The check can fail: a white page, and one with a lone heading, are caught.
    white = np.ones_like(pixels)
    assert looks_blank(white)
    white[20:60, 20:400] = 0.1
    assert looks_blank(white)


def looks_blank(pixels) -> bool:
    """One colour covers 90% or more of it, or it has fewer than 50 shades: text, tables and
    plots give many (antialiasing) and leave the background well under 90%."""
    import numpy as np

    flat = (pixels.reshape(-1, 3) * 255).round().astype(np.uint8)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    return counts.max() / len(flat) >= 0.9 or len(colours) < 50


@needs_browser
def test_every_figure_in_the_dom_equals_the_json(loaded):
    directory, (dom, *_rest) = loaded
    verify_doc = json.loads((directory / "verify.json").read_text())
    bench_doc = json.loads((directory / "bench.json").read_text())
    models = set(manifest.load(directory)["models"])
    assert {r["model"] for r in verify_doc["results"]} == models
    assert len(verify_doc["results"]) > 40 and len(bench_doc["rows"]) > 30
    assert mismatches(dom, verify_doc, bench_doc) == []
    # Scaling rows come from the scaling figures, where the model has them.
    assert {d["model"] for d in dom if d["table"] == "scaling"} == {"many-to-one", "many-to-many"}
    # The comparison can fail: one figure changed in the JSON, one row dropped.
    doctored = copy.deepcopy(bench_doc)
    doctored["rows"][5]["timing"]["p99_us"] *= 1.5
    found = mismatches(dom, verify_doc, doctored)
    assert len(found) == 1 and "p99_us" in found[0]
    fewer = copy.deepcopy(verify_doc)
    fewer["results"].pop()
    assert any("rows on the page" in line for line in mismatches(dom, fewer, bench_doc))


@needs_browser
def test_the_page_reads_the_same_with_javascript_off(loaded):
    directory, (_, _, _, _, text) = loaded
    _, requests, problems, _, text_off = load_page(directory / "report.html", javascript=False)
    assert problems == [] and len(requests) == 1
    assert text_off == text


def test_a_new_export_replaces_the_results_beside_it(measured, tmp_path):
    """verify.json, bench.json and report.html are edge-echo's own: a new export into the
    directory is not refused for them, and does not keep them (they were about other files)."""
    from conftest import FULL_OPTIONS

    from edge_echo.export import export
    from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES

    directory = make_copy(measured, tmp_path)
    report_mod.write(report_mod.gather(directory), directory / "report.html")
    (directory / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="did not write \\(notes.txt\\)"):
        export(directory, list(MODEL_NAMES), seed=DEFAULT_SEED, **FULL_OPTIONS)
    (directory / "notes.txt").unlink()
    export(directory, list(MODEL_NAMES), seed=DEFAULT_SEED, **FULL_OPTIONS)
    assert not any((directory / name).exists() for name in manifest.RESULT_FILES.values())


def test_results_of_an_unexpected_shape_cost_one_part_not_the_page(measured, tmp_path, cli):
    directory = make_copy(measured, tmp_path)
    doc = json.loads((directory / "bench.json").read_text())
    del doc["rows"][0]["timing"]["p50_us"]
    doc["rows"][1]["memory"] = "lots"
    (directory / "bench.json").write_text(json.dumps(doc))
    page = page_of(directory, cli)
    assert 'data-broken="performance"' in page and "KeyError" in page
    # The rest is drawn: every model's verification table.
    assert page.count('data-table="verify"') == len(json.loads(
        (directory / "verify.json").read_text())["results"])
