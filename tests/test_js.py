"""Issue 36: the exported files in the JavaScript runtimes apps use: ONNX Runtime Node (in Node),
ONNX Runtime Web and LiteRT.js (in headless Chromium), verified against Keras like every other
runtime, timed by bench, and offline. (The zoo runs on them in tests/test_convert.py.)"""

import base64
import json

import numpy as np
import pytest
from conftest import read_manifest, rehash

from edge_echo import jshost, refdata
from edge_echo.bench import bench
from edge_echo.convert import tflite_web
from edge_echo.errors import ArtifactError
from edge_echo.runners import JS_RUNNERS, RUNNERS, python_twin
from edge_echo.runners.litert import LiteRTRunner
from edge_echo.runners.onnxruntime import OnnxRunner
from edge_echo.specs import MODEL_NAMES
from edge_echo.verify import verify

pytestmark = pytest.mark.js

NODE = ("onnxruntime-node", "onnxruntime-node-ort")
BROWSER = ("onnxruntime-web", "onnxruntime-web-ort", "litertjs")
# Each JavaScript runtime's Python twin: the same file on the Python runtime.
TWIN = {cls.runtime: cls.twin for cls in JS_RUNNERS}


def _need(*runtimes: str) -> None:
    for rt in runtimes:
        why = RUNNERS[rt].unavailable()
        if why:
            pytest.skip(f"{rt}: {why}")


def _outputs(cls, directory, entry, kind, x):
    art = entry["artifacts"][kind]
    with cls(directory / art["file"], ["x"], ["y"], artifact=art) as runner:
        return runner.infer({"x": x})["y"]


def test_every_echo_file_passes_on_each_javascript_runtime(full_export):
    """Every echo model's .onnx, .ort and .web.tflite, their step files and quantized variants,
    on onnxruntime-node, onnxruntime-web and litertjs: within the tolerance the Python runtimes
    meet, the echo printed; and the float files within 1e-6 of their Python twin."""
    _need(*NODE, *BROWSER)
    directory, _ = full_export
    report = verify(directory, latency_runs=0, cores=())
    assert report.passed, [line for r in report.results for line in r.failures()]
    ran = {(r.model, r.runtime): r for r in report.results}
    doc = read_manifest(directory)
    for model in MODEL_NAMES:
        arts = doc["models"][model]["artifacts"]
        expected = set(NODE + BROWSER) | {f"{rt}-step" for rt in NODE + BROWSER}
        expected |= {f"{rt}:{v}" for rt in NODE + BROWSER for v in ("int8", "float16", "dynamic")
                     if f"{RUNNERS[rt].artifact}_{v}" in arts}
        assert "litertjs:int8" in expected and "onnxruntime-web-ort:float16" in expected
        for rt in expected:
            r = ran[(model, rt)]
            assert r.passed and r.echo.passed, (model, rt, r.max_abs)
            assert r.tolerance == ran[(model, python_twin(rt))].tolerance, rt
        # The float32 files: within 1e-6 of the Python runtime on the same file.
        ref = refdata.load(directory / f"{model}.reference.npz")
        x = refdata.inputs(ref, refdata.RANDOM_X, ["x"])["x"][:32]
        entry = doc["models"][model]
        for rt, twin in TWIN.items():
            cls, twin_cls = RUNNERS[rt], RUNNERS[twin]
            there = _outputs(cls, directory, entry, cls.artifact, x)
            here = _outputs(twin_cls, directory, entry, twin_cls.artifact, x)
            assert np.max(np.abs(there - here)) <= 1e-6, (model, rt, np.max(np.abs(there - here)))


def test_node_runs_the_same_bits_as_python_onnxruntime(exported):
    """ONNX Runtime Node is the same native library as the Python package's CPU provider: on the
    same .onnx the outputs agree to the bit where the versions share their kernels, and within
    1e-6 in any case (a weaker bound would hide a wrong input order)."""
    _need("onnxruntime-node")
    entry = read_manifest(exported)["models"]["many-to-many"]
    ref = refdata.load(exported / "many-to-many.reference.npz")
    x = refdata.inputs(ref, refdata.RANDOM_X, ["x"])["x"]
    node = _outputs(RUNNERS["onnxruntime-node"], exported, entry, "onnx", x)
    python = _outputs(OnnxRunner, exported, entry, "onnx", x)
    assert node.shape == python.shape == (len(x), 5, 1)
    assert np.max(np.abs(node - python)) <= 1e-6


def test_a_moved_weight_fails_exactly_the_runtimes_of_that_file(export_copy, cli):
    """One weight of many-to-one.onnx moved: onnxruntime and its Node and Web twins fail on it;
    one weight of many-to-many.web.tflite moved: litertjs fails, and nothing else."""
    _need(*NODE, *BROWSER)
    from test_verify import _perturb_onnx, _perturb_tflite

    _perturb_onnx(export_copy / "many-to-one.onnx", "lstm", 0.05)
    rehash(export_copy, "many-to-one.onnx")
    _perturb_tflite(export_copy / "many-to-many.web.tflite", 0.05)
    rehash(export_copy, "many-to-many.web.tflite")
    result = cli("verify", export_copy, "--no-keras", "--targets", "none")
    assert result.exit_code == 1
    failed = {line.split(":")[0].removeprefix("FAIL ") for line in result.stderr.splitlines()
              if line.startswith("FAIL ")}
    assert failed == {"many-to-one / onnxruntime", "many-to-one / onnxruntime-node",
                      "many-to-one / onnxruntime-web", "many-to-many / litertjs"}, result.stderr


def test_litertjs_runs_the_web_file_and_refuses_a_dynamic_batch_in_one_line(exported, tmp_path):
    """LiteRT.js cannot resize an input: the dynamic-batch .tflite fails in one line that says
    so, and the .web.tflite beside it (the same operators and weights, batch fixed at 1) runs
    with LiteRT's bits on the dynamic file."""
    _need("litertjs")
    entry = read_manifest(exported)["models"]["many-to-one"]
    arts = entry["artifacts"]
    web, full = arts["tflite_web"], arts["tflite"]
    assert web["of"] == full["file"] and web["web"]["batch"] == 1
    assert web["operators"] == full["operators"]
    for put in ("inputs", "outputs"):  # the same, with a batch of 1 where it was open
        assert web[put] == [{**d, "shape": [1, *d["shape"][1:]]} for d in full[put]]
    assert tflite_web.static((exported / web["file"]).read_bytes())[1] == 0  # nothing left dynamic
    ref = refdata.load(exported / "many-to-one.reference.npz")
    x = refdata.inputs(ref, refdata.RANDOM_X, ["x"])["x"][:16]
    on_web = _outputs(RUNNERS["litertjs"], exported, entry, "tflite_web", x)
    on_litert = _outputs(LiteRTRunner, exported, entry, "tflite", x)
    assert np.max(np.abs(on_web - on_litert)) <= 1e-6
    with pytest.raises(ArtifactError) as caught, \
            RUNNERS["litertjs"](exported / full["file"], ["x"], ["y"], artifact=full):
        pass
    message = str(caught.value)
    assert "\n" not in message and message.startswith("many-to-one.tflite: LiteRT.js cannot resize")
    assert "[-1, 5, 1]" in message and ".web.tflite" in message, message
    # What LiteRT.js itself says when given one anyway (the runner's check is not a guess).
    host = jshost.host("browser")
    opened = host.call("open", "litertjs", base64.b64encode((exported / full["file"]).read_bytes())
                       .decode(), {})
    with pytest.raises(ArtifactError, match=r"does not match expected .*\[-1, 5, 1\]"):
        host.call("run", opened["id"], [jshost.encode(x[:1])])
    host.call("close", opened["id"])


@pytest.mark.parametrize("runtime", ["onnxruntime-node", "onnxruntime-web"])
def test_an_operator_the_runtime_lacks_is_one_line_naming_it(tmp_path, runtime):
    _need(runtime)
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    model.ir_version = 8  # what every ONNX Runtime here reads (the exports' own is 8 or 9)
    path = tmp_path / "odd.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ArtifactError) as caught, RUNNERS[runtime](path, ["x"], ["y"]):
        pass
    message = str(caught.value)
    assert "\n" not in message and "Frobnicate" in message and message.startswith("odd.onnx:")


def test_the_page_reaches_nothing_but_the_loopback_server(exported):
    """Everything the browser runtimes load (their .mjs and .wasm files) comes from the
    installed packages through the loopback server; a request anywhere else is refused and
    recorded, which is what the check reads."""
    _need(*BROWSER)
    entry = read_manifest(exported)["models"]["one-to-one"]
    x = np.zeros((1, 1, 1), np.float32)
    for rt in BROWSER:
        _outputs(RUNNERS[rt], exported, entry, RUNNERS[rt].artifact, x)
    host = jshost.host("browser")
    assert host.escaped == []
    assert host.origin.startswith("http://127.0.0.1:")
    # The check can fail: a request off the machine is refused and recorded.
    host.page.evaluate("fetch('http://192.0.2.1/model.onnx').catch(() => null)")
    host.page.wait_for_timeout(200)
    assert host.escaped == ["http://192.0.2.1/model.onnx"]
    host.escaped.clear()


def test_a_request_that_never_answers_is_an_error_not_a_hang(exported):
    _need("onnxruntime-web")
    host = jshost.host("browser")
    data = base64.b64encode((exported / "one-to-one.onnx").read_bytes()).decode()
    opened = host.call("open", "onnxruntime", data, {})
    x = [jshost.encode(np.zeros((1, 1, 1), np.float32))]
    # 200,000 timed calls take seconds; the watchdog stops the browser at 0.5 s.
    with pytest.raises(ArtifactError, match=r"^no answer within 0.5 s: headless Chromium was stopped$"):
        host.call("time", opened["id"], x, 200_000, 0, timeout=0.5)
    assert not host.alive()
    with pytest.raises(ArtifactError, match="stopped after a request that hung"):
        host.call("close", opened["id"])
    # The next runner gets a new browser.
    again = jshost.host("browser")
    assert again is not host and again.alive()
    entry = read_manifest(exported)["models"]["one-to-one"]
    y = _outputs(RUNNERS["onnxruntime-web"], exported, entry, "onnx", np.zeros((2, 1, 1), np.float32))
    assert y.shape == (2, 1)


def test_without_the_packages_or_node_each_runtime_is_skipped_in_one_line(exported, monkeypatch,
                                                                         tmp_path):
    monkeypatch.setenv("EDGE_ECHO_NODE_MODULES", str(tmp_path / "none"))
    report = verify(exported, keras=False, latency_runs=0, cores=())
    assert report.passed
    skipped = [n for n in report.notes if "npm package" in n]
    assert len(skipped) == 3, report.notes  # one line per package, naming its runtimes
    assert all("make js" in n for n in skipped)
    js = ("onnxruntime-node", "onnxruntime-web", "litertjs")
    assert [r.runtime for r in report.results if r.runtime.startswith(js)] == []
    assert any(r.runtime == "onnxruntime-ort" for r in report.results)
    monkeypatch.delenv("EDGE_ECHO_NODE_MODULES")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "no Node here" in RUNNERS["onnxruntime-node"].unavailable()


def test_bench_times_each_javascript_runtime_beside_its_python_twin(exported):
    """bench's p50 of the bare call per JS runtime, in the same run as the Python runtime on the
    same file; their memory is said not measured here (another process)."""
    _need(*NODE, *BROWSER)
    runtimes = tuple(TWIN) + tuple(dict.fromkeys(TWIN.values()))
    report = bench(exported, runtimes, runs=30, warmup=5, batch=4, models=["many-to-many"],
                   memory=True, cores=())
    rows = {r.runtime: r for r in report.rows}
    assert set(TWIN) | set(TWIN.values()) <= set(rows)
    for rt, twin in TWIN.items():
        assert rows[rt].file == rows[twin].file or (rt == "litertjs" and
                                                    rows[rt].file == "many-to-many.web.tflite")
        assert rows[rt].timing.p50_us > 0 and rows[rt].floor.p50_us > 0
        assert rows[rt].peak_rss_delta_bytes is None and "outside this process" in rows[rt].memory_note
        assert rows[twin].peak_rss_delta_bytes is not None
    # The JSON records what the JavaScript rows ran on.
    recorded = json.loads(json.dumps(report.to_dict()))["versions"]
    assert recorded["node"] and all(recorded[p] == jshost.package_version(p) for p in jshost.PACKAGES)


def test_the_lock_pins_every_package_at_the_version_installed_here():
    """package-lock.json pins each package the runtimes load, at the version installed here,
    and each JavaScript runtime names its Python twin."""
    lock = json.loads((jshost.ROOT / "package-lock.json").read_text())
    for name in ("onnxruntime-node", "onnxruntime-web", "@litertjs/core", "onnxruntime-common"):
        pinned = lock["packages"][f"node_modules/{name}"]
        assert pinned["integrity"].startswith("sha512-")
        assert "resolved" not in pinned  # the registry npm is configured with, not a URL
        if jshost.package_version(name):
            assert jshost.package_version(name) == pinned["version"]
    assert TWIN == {"onnxruntime-node": "onnxruntime", "onnxruntime-node-ort": "onnxruntime-ort",
                    "onnxruntime-web": "onnxruntime", "onnxruntime-web-ort": "onnxruntime-ort",
                    "litertjs": "litert"}
    assert python_twin("onnxruntime-web-ort-step") == "onnxruntime-ort-step"
    assert python_twin("litertjs:int8") == "litert:int8"


def test_the_web_example_shows_the_echo_beside_keras(full_export):
    """examples/web/ served as `make web` serves it (the export under /exported/, the packages
    under /node_modules/), in headless Chromium: the seed input's echo from ONNX Runtime Web and
    from the C source's .wasm, next to Keras's stored output; another sequence runs too, and a
    wrong length is one line on the page. Nothing is requested from anywhere else."""
    _need("onnxruntime-web")
    directory, _ = full_export
    host = jshost.host("browser")
    server = jshost.serve({"/examples/web/": jshost.ROOT / "examples" / "web",
                           "/node_modules/": jshost.modules(), "/exported/": directory})
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    escaped = []
    context = host.chromium.new_context()
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(origin)
                  else (escaped.append(route.request.url), route.abort()))
    try:
        page = context.new_page()
        page.goto(f"{origin}/examples/web/")
        page.wait_for_selector("body[data-state=done]", timeout=60_000)
        assert page.input_value("#model") == "many-to-many"
        rows = {tr.get_attribute("data-runtime"): tr.query_selector("td.out").inner_text()
                for tr in page.query_selector_all("#results tr")}
        assert rows == {"Keras (stored in the export)": "0.0 0.2 0.4 0.6 0.8",
                        "ONNX Runtime Web (WebAssembly)": "0.0 0.2 0.4 0.6 0.8",
                        "C source as WebAssembly": "0.0 0.2 0.4 0.6 0.8"}
        diffs = [float(td.inner_text()) for td in page.query_selector_all("#results td.diff")[1:]]
        assert len(diffs) == 2 and max(diffs) <= 1e-5
        page.fill("#sequence", "0.8 0.6 0.4 0.2 0")
        page.click("#run")
        page.wait_for_function(
            "document.querySelector('#status').textContent.startsWith('many-to-many: 0.8')")
        out = page.query_selector("tr[data-runtime='ONNX Runtime Web (WebAssembly)'] td.out").inner_text()
        assert len(out.split()) == 5 and out != "0.0 0.2 0.4 0.6 0.8"
        assert "not stored" in page.query_selector("tr[data-runtime^=Keras] td.out").inner_text()
        page.fill("#sequence", "1 2 3")
        page.click("#run")
        page.wait_for_selector("body[data-state=error]")
        assert "takes 5 steps of 1 value(s); got 3 values" in page.inner_text("#error")
        # The one-to-one model: one value per step, its seed fed one value a sequence.
        page.select_option("#model", "one-to-one")
        page.wait_for_function(
            "document.querySelector('#status').textContent.startsWith('one-to-one: ')")
        assert page.query_selector("tr[data-runtime^=ONNX] td.out").inner_text() == "0.0 0.2 0.4 0.6 0.8"
    finally:
        context.close()
        server.shutdown()
    assert escaped == []


def test_a_browser_that_does_not_start_is_one_line_and_the_rest_run(exported, monkeypatch):
    """Chromium that fails to start (here: an executable that exits at once) costs the browser
    runtimes, each said in one line; verify runs and passes the others, Node's included."""
    _need(*NODE)
    from edge_echo import browser

    jshost.close_all()
    monkeypatch.setattr(browser, "executable", lambda: "/bin/false")
    try:
        report = verify(exported, keras=False, latency_runs=0, cores=(), models=["many-to-one"])
    finally:
        jshost.close_all()
    assert report.passed
    ran = {r.runtime for r in report.results}
    assert {"onnxruntime-node", "onnxruntime-node-step", "onnxruntime"} <= ran
    assert not ran & {"onnxruntime-web", "onnxruntime-web-ort", "litertjs", "litertjs-step"}
    (line,) = [n for n in report.notes if "not run: headless Chromium did not start" in n]
    assert "\n" not in line and line.startswith("many-to-one: onnxruntime-web, onnxruntime-web-ort, "
                                                "litertjs, "), line
