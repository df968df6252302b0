"""Issue 35: the C source on RISC-V microcontrollers, 64-bit Arm gateways and WebAssembly, each a
target module of edge_echo/targets/ (Cortex-M's are tests/test_cortexm.py)."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import read_manifest, read_measured, rehash

from edge_echo import refdata, targets
from edge_echo.runners import RUNNERS
from edge_echo.runners.c import CRunner
from edge_echo.specs import MODEL_NAMES
from edge_echo.targets import wasm
from edge_echo.verify import verify

NEW = ("riscv32imac", "riscv32imafc", "aarch64", "wasm32")


def _need(*names: str) -> None:
    for name in names:
        why = targets.unavailable(name)
        if why:
            pytest.skip(why)
    if CRunner.unavailable():
        pytest.skip(CRunner.unavailable())


def _outputs(runner_cls, directory: Path, model: str, art_kind: str, x: np.ndarray) -> np.ndarray:
    entry = read_manifest(directory)["models"][model]
    art = entry["artifacts"][art_kind]
    with runner_cls(directory / art["file"], ["x"], ["y"], artifact=art) as runner:
        return runner.infer({"x": x})["y"]


@pytest.mark.parametrize("name", NEW)
def test_each_new_target_reproduces_keras_with_the_hosts_bits(c_export, name):
    """Within 1e-6 of Keras on every echo model, the echo printed, both APIs; and the very bits
    of the host's C (x86-64 SSE): the float C has the same products summed in the same order,
    unfused, on each of these targets, whether scalar (rv32imac's soft float, rv32imafc) or
    vector (NEON, simd128)."""
    _need(name)
    report = verify(c_export, latency_runs=0, cores=(name,))
    assert report.passed, [line for r in report.results for line in r.failures()]
    ran = {(r.model, r.runtime): r for r in report.results}
    for model in MODEL_NAMES:
        for kind in ("c", "c-step"):
            r = ran[(model, f"{kind}@{name}")]
            assert r.max_abs <= 1e-6 and r.echo.passed, (model, kind, r.max_abs)
            assert r.p50_us is None  # not timed in verify: bench gives its figures
    runtime = RUNNERS[f"c@{name}"]
    for model in MODEL_NAMES:
        ref = refdata.load(c_export / f"{model}.reference.npz")
        x = refdata.inputs(ref, refdata.RANDOM_X, ["x"])["x"][:8]
        here = _outputs(CRunner, c_export, model, "c_source", x)
        there = _outputs(runtime, c_export, model, runtime.artifact, x)
        assert np.array_equal(here.view(np.uint32), there.view(np.uint32)), (model, here - there)


def test_each_family_is_measured_in_device_json(c_export):
    """Flash within 4 x params + 2 KiB (3 KiB on rv32imac), the deepest stack, no libm, and
    instructions from the core's own counter (RISC-V's minstret, one tick an instruction) or
    the emulator's trace (aarch64); the .wasm within 4 x params + 2 KiB and its loader within
    2 KiB (bench times it in Node)."""
    _need(*NEW)
    doc = read_measured(c_export)
    for model, entry in doc["models"].items():
        c = entry["artifacts"]["c_source"]["c"]
        riscv, arm64 = c["riscv"], c["aarch64"]
        assert "minstret" in riscv["method"] and "picolibc" in riscv["libc"]
        assert "trace" in arm64["method"] and "qemu-aarch64" in arm64["emulator"]
        for family in (riscv, arm64):
            for core, f in family["cores"].items():
                # rv32imac's soft float calls cost it a few hundred bytes more (reported, the
                # issue sets no bound for it); the others keep the float C's.
                bound = 4 * c["params"] + (3072 if core == "riscv32imac" else 2048)
                assert 0 < f["flash_bytes"] <= bound, (model, core, f)
                assert f["ram_bytes"] == 0 and f["stack_bytes"] > 0
                assert f["instructions_per_tick"] == 1.0
                assert all(call in ("memset", "memcpy") or call.startswith("__")
                           for call in f["library_calls"]), f["library_calls"]
                per_step = f["instructions_per_step"]
                assert c["steps"] * per_step["mean"] <= f["instructions_per_sequence"] * 1.1
        soft, hard = riscv["cores"]["riscv32imac"], riscv["cores"]["riscv32imafc"]
        assert "__mulsf3" in soft["library_calls"] and "__mulsf3" not in hard["library_calls"]
        assert hard["instructions_per_sequence"] * 5 < soft["instructions_per_sequence"]
        art = entry["artifacts"]["wasm"]
        loader = entry["artifacts"]["wasm_loader"]
        assert art["size"] <= 4 * art["c"]["params"] + 2048 and loader["size"] <= 2048
        assert art["wasm"]["imports"] == [] and art["wasm"]["loader"] == loader["file"]
        node = art["c"]["wasm"]["cores"]["wasm32"]
        # Bytes, not time: device.json keeps what a second export repeats exactly.
        assert node["wasm_bytes"] == art["size"] and "p50_us" not in node


def test_the_wasm_bytes_are_reproducible_and_the_scalar_build_gives_the_same_bits(c_export, tmp_path):
    _need("wasm32")
    doc = read_manifest(c_export)
    art = doc["models"]["many-to-many"]["artifacts"]["wasm"]
    source = (c_export / "many-to-many.c").read_text()
    header = (c_export / "many-to-many.h").read_text()
    again = wasm.build_module(source, header, art["c"], "many-to-many")
    assert again == (c_export / art["file"]).read_bytes()
    scalar = wasm.build_module(source, header, art["c"], "many-to-many", scalar=True)
    assert scalar != again  # no simd128 vectors in it
    out = tmp_path / "scalar"
    shutil.copytree(c_export, out)
    (out / art["file"]).write_bytes(scalar)
    rehash(out, art["file"])
    ref = refdata.load(out / "many-to-many.reference.npz")
    x = refdata.inputs(ref, refdata.RANDOM_X, ["x"])["x"][:8]
    runtime = RUNNERS["c@wasm32"]
    vector = _outputs(runtime, c_export, "many-to-many", "wasm", x)
    assert np.array_equal(_outputs(runtime, out, "many-to-many", "wasm", x).view(np.uint32),
                          vector.view(np.uint32))


NODE_APP = """
import { load, STEPS } from "./many-to-many.mjs";
const model = await load();
const seq = new Float32Array([0, 0.2, 0.4, 0.6, 0.8]);
const whole = Array.from(model.predict(seq));
model.reset();
const stepped = [];
for (let t = 0; t < STEPS; t++) stepped.push(model.step(seq.subarray(t, t + 1))[0]);
let refused = "";
try { model.predict(new Float32Array(3)); } catch (err) { refused = `${err.name}: ${err.message}`; }
console.log(JSON.stringify({ whole, stepped, refused }));
"""


def test_an_app_in_node_imports_the_loader_and_gets_the_echo(c_export, tmp_path):
    """What a JavaScript app does: import NAME.mjs beside NAME.wasm, predict and step; a wrong
    length is a RangeError, not a silent read of stale memory."""
    _need("wasm32")
    for suffix in (".wasm", ".mjs"):
        shutil.copy(c_export / f"many-to-many{suffix}", tmp_path)
    (tmp_path / "app.mjs").write_text(NODE_APP)
    done = subprocess.run(["node", "app.mjs"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    np.testing.assert_allclose(said["whole"], [0, 0.2, 0.4, 0.6, 0.8], atol=0.05)
    assert said["stepped"] == said["whole"]
    assert said["refused"] == "RangeError: takes 5 values, got 3"


def test_a_perturbed_weight_in_the_wasm_makes_verify_fail(c_export, tmp_path, cli):
    """The module's weights are its data segment: one moved by 0.01 fails c@wasm32 and
    c-step@wasm32, and nothing else (the C source is untouched)."""
    _need("wasm32")
    out = tmp_path / "copy"
    shutil.copytree(c_export, out)
    path = out / "many-to-one.wasm"
    data = path.read_bytes()
    weights = _first_weight(out / "many-to-one.c")
    at = data.find(np.float32(weights).tobytes())
    assert at > 0
    path.write_bytes(data[:at] + np.float32(weights + 0.01).tobytes() + data[at + 4:])
    rehash(out, "many-to-one.wasm")
    result = cli("verify", out, "--no-keras", "--models", "many-to-one", "--targets", "wasm32")
    assert result.exit_code == 1
    failed = {line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("FAIL")}
    assert failed == {"FAIL many-to-one / c@wasm32", "FAIL many-to-one / c-step@wasm32"}


def _first_weight(c_path: Path) -> float:
    import re

    match = re.search(r"static const float D0_W\[\d+\] = \{\n\s+(-?[0-9.e-]+)f", c_path.read_text())
    return float(match.group(1))


def test_targets_are_named_by_family_alias_or_name(cli, c_export):
    assert targets.parse_targets(["riscv"]) == ("riscv32imac", "riscv32imafc")
    assert targets.parse_targets(["rv32imac,arm64", "wasm"]) == ("riscv32imac", "aarch64", "wasm32")
    assert targets.parse_targets(["cortex-m"]) == tuple(targets.cortexm.CORES)
    assert targets.parse_targets(["all"]) == targets.TARGET_NAMES
    result = cli("verify", c_export, "--no-keras", "--targets", "riscv64")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("edge-echo: error: --targets: unknown target 'riscv64'")
    assert "riscv32imac" in line and "wasm32" in line


def test_a_target_without_its_tools_is_skipped_in_one_line(c_export, cli, monkeypatch, tmp_path):
    """Only the host's tools on PATH (cc, node): each missing family is one note with the
    command that installs it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("cc", "gcc", "as", "ld", "node"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))
    result = cli("verify", c_export, "--no-keras", "-m", "one-to-one", "--targets",
                 "riscv,aarch64")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert ("c@riscv32imac, c@riscv32imafc, c-step@riscv32imac, c-step@riscv32imafc skipped: no "
            "riscv64-unknown-elf-gcc") in text
    assert "(Debian: apt-get install gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf " \
           "qemu-system-misc)" in text
    assert "c@aarch64, c-step@aarch64 skipped: no aarch64-linux-gnu-gcc" in text
    assert "riscv32imac" not in " ".join(line for line in result.stdout.splitlines()
                                          if "pass" in line)


def test_bench_times_node_beside_the_host_c(c_export):
    _need("wasm32", "riscv32imafc")
    from edge_echo.bench import bench

    report = bench(c_export, runtimes=("c",), runs=20, warmup=2, batch=2, memory=False,
                   models=["many-to-many"], cores=("riscv32imafc", "wasm32"))
    rows = {d["core"]: d for d in report.device}
    assert set(rows) == {"riscv32imafc", "wasm32"}
    stored = read_measured(c_export)["models"]["many-to-many"]["artifacts"]
    # The same build and input as device.json's: the same count, instruction for instruction.
    assert rows["riscv32imafc"]["instructions_per_sequence"] == \
        stored["c_source"]["c"]["riscv"]["cores"]["riscv32imafc"]["instructions_per_sequence"]
    node = rows["wasm32"]
    assert node["file"] == "many-to-many.wasm" and node["runtime"] == "c@wasm32"
    assert 0 < node["p50_us"] <= node["p99_us"] and "Node" in node["method"]
    assert any(r.runtime == "c" and r.model == "many-to-many" for r in report.rows)


def test_a_traced_run_past_its_timeout_is_one_line_not_a_hang(c_export):
    """aarch64's figures come from a trace read as it is written: a run past the timeout is
    killed and said, like an emulator run that does not finish."""
    _need("aarch64")
    from edge_echo.errors import ArtifactError

    art = read_manifest(c_export)["models"]["many-to-many"]["artifacts"]["c_source"]
    program = targets.program("aarch64", c_export / art["file"], art["c"])
    x = np.full((1, 5), 0.25, np.float32)
    with pytest.raises(ArtifactError, match=r"^qemu-aarch64 \(traced\) did not finish in 0 s$"):
        program.run(x, step=False, y_size=5, timeout=0.05, count=True)
    _, figures = program.run(x, step=False, y_size=5, count=True)  # the same run, given time
    assert figures["instructions"][0] > 1000
