"""Issue 21: the C source built, run and measured on emulated Cortex-M0 to M55 (qemu-system-arm)."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import read_measured

from edge_echo import targets
from edge_echo.targets import cortexm
from edge_echo.verify import verify

ROOT = Path(__file__).resolve().parents[1]
WHY = targets.unavailable("cortex-m4")
CORE_NAMES = tuple(cortexm.CORES)
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")
# What the model object may ask of the libraries: memset and memcpy, and on a core without an
# FPU the compiler's own float routines (__aeabi_fmul, ...). Never libm.
ALLOWED = {"memset", "memcpy"}


def _no_libm(calls: list[str]) -> bool:
    return all(c in ALLOWED or c.startswith("__aeabi_") for c in calls)


@pytest.fixture
def arm_export(c_export):
    return c_export


def test_every_core_is_measured_in_the_manifest(arm_export):
    doc = read_measured(arm_export)
    for name, entry in doc["models"].items():
        c = entry["artifacts"]["c_source"]["c"]
        device = c["cortex_m"]
        assert device["method"].startswith("SysTick ticks under qemu -icount shift=0")
        assert "arm-none-eabi-gcc" in device["compiler"] and "QEMU" in device["emulator"]
        assert set(device["cores"]) == set(CORE_NAMES)
        for core, f in device["cores"].items():
            assert 0 < f["flash_bytes"] <= 4 * c["params"] + 2048, (name, core, f)
            assert f["ram_bytes"] == 0 and f["stack_bytes"] > 0
            assert f["state_bytes"] == c["state_bytes"]
            # nm -u of the model object: no math function on any core.
            assert _no_libm(f["library_calls"]), (core, f["library_calls"])
            soft = cortexm.CORES[core].float_abi == "soft"
            assert any(call.startswith("__aeabi_f") for call in f["library_calls"]) == soft
            per_step = f["instructions_per_step"]
            assert 0 < per_step["mean"] <= per_step["largest"]
            # A whole sequence costs its steps plus predict's own few instructions.
            steps = c["steps"]
            assert steps * per_step["mean"] <= f["instructions_per_sequence"] * 1.1
            assert f["estimate_us_at_clock"] == pytest.approx(
                f["instructions_per_sequence"] / f["clock_hz"] * 1e6, abs=0.1)
        # A core with an FPU runs the same model in far fewer instructions.
        cores = device["cores"]
        assert cores["cortex-m4"]["instructions_per_sequence"] * 10 < \
            cores["cortex-m0"]["instructions_per_sequence"]


def test_every_core_reproduces_keras(arm_export):
    report = verify(arm_export, latency_runs=0, models=["many-to-many", "many-to-one"], cores=CORE_NAMES)
    assert report.passed, [line for r in report.results for line in r.failures()]
    ran = {(r.model, r.runtime): r for r in report.results}
    for model in ("many-to-many", "many-to-one"):
        for core in CORE_NAMES:
            for kind in ("c", "c-step"):
                r = ran[(model, f"{kind}@{core}")]
                # The bar for the echo models: within 1e-6 of Keras on every core.
                assert r.max_abs <= 1e-6 and r.echo.passed, (model, kind, core, r.max_abs)
                assert r.p50_us is None  # not timed on the host: bench counts instructions
    assert any("qemu-system-arm" in note for note in report.notes)


def test_targets_pick_the_cores(arm_export, cli):
    report = verify(arm_export, latency_runs=0, models=["one-to-one"], cores=("cortex-m4",))
    emulated = {r.runtime for r in report.results if "@" in r.runtime}
    assert emulated == {"c@cortex-m4", "c-step@cortex-m4"}
    for value in ("m5", "cortex-m4,bogus", ""):
        result = cli("verify", arm_export, "--no-keras", "--targets", value)
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("edge-echo: error: --targets") and "cortex-m0" in line
    result = cli("verify", arm_export, "--no-keras", "-m", "one-to-one", "--targets", "m0,m55")
    assert result.exit_code == 0, result.output
    assert "c@cortex-m0" in result.stdout and "c-step@cortex-m55" in result.stdout
    assert "c@cortex-m4" not in result.stdout
    result = cli("verify", arm_export, "--no-keras", "-m", "one-to-one", "--targets", "none")
    assert result.exit_code == 0 and "cortex" not in result.stdout


def test_bench_counts_instructions_on_each_core(arm_export):
    from edge_echo.bench import bench

    report = bench(arm_export, runtimes=("c",), runs=5, warmup=1, batch=2, memory=False,
                   models=["many-to-many"], cores=("cortex-m0", "cortex-m4"))
    rows = {d["core"]: d for d in report.device}
    assert set(rows) == {"cortex-m0", "cortex-m4"}
    stored = read_measured(arm_export)["models"]["many-to-many"]["artifacts"]["c_source"]["c"]
    for core, d in rows.items():
        # The same build and input as the manifest's: the same count, instruction for instruction.
        assert d["instructions_per_sequence"] == \
            stored["cortex_m"]["cores"][core]["instructions_per_sequence"]
        assert d["file"] == "many-to-many.c" and d["runtime"] == f"c@{core}"
    assert report.to_dict()["device"] == report.device
    assert all("SysTick" in d["method"] for d in report.device)


def test_a_model_too_big_for_a_core_is_said_not_failed(tmp_path):
    """8 steps of 550 floats is 17,600 bytes of input: more than the micro:bit's 16 KiB of RAM
    (a few steps, so that the cores it does fit run it in moments)."""
    from edge_echo.tfenv import import_tensorflow
    from edge_echo.usermodel import convert

    import_tensorflow()
    import keras

    keras.utils.set_random_seed(1)
    i = keras.Input((8, 550))
    keras.Model(i, keras.layers.Dense(1)(keras.layers.SimpleRNN(2)(i))).save(tmp_path / "long.keras")
    convert(tmp_path / "long.keras", tmp_path / "out", forms=("tflite",), c_source=True)
    c = read_measured(tmp_path / "out")["models"]["long"]["artifacts"]["c_source"]["c"]
    m0 = c["cortex_m"]["cores"]["cortex-m0"]
    assert m0["measured"].startswith("not measured: long.c does not fit microbit") and "16 KiB" in \
        m0["measured"]
    assert c["cortex_m"]["cores"]["cortex-m4"]["instructions_per_sequence"] > 0
    report = verify(tmp_path / "out", latency_runs=0, cores=("cortex-m0", "cortex-m4"))
    assert report.passed
    assert {r.runtime for r in report.results if "@" in r.runtime} == \
        {"c@cortex-m4", "c-step@cortex-m4"}
    (note,) = [n for n in report.notes if "c@cortex-m0 not run" in n]
    assert "does not fit microbit" in note and "\n" not in note


def test_the_firmware_example_streams_the_echo(tmp_path):
    build = tmp_path / "build"
    done = subprocess.run(["make", "-C", str(ROOT / "examples" / "cortex-m"), "run",
                           f"BUILD={build}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # QEMU writes the semihosting console to stderr.
    rows = [line.split() for line in (done.stdout + done.stderr).splitlines()
            if line[:1].isdigit() and len(line.split()) == 3]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3, 4]
    x = np.array([float(r[1]) for r in rows])
    y = np.array([float(r[2]) for r in rows])
    np.testing.assert_allclose(x, [0.0, 0.2, 0.4, 0.6, 0.8])
    assert np.abs(y - x).max() < 0.05  # the echo, as the committed model gives it
    # The example's linker script is the one verify's firmware uses on that board.
    ours = cortexm.linker_script(cortexm.CORES["cortex-m4"])
    theirs = (ROOT / "examples" / "cortex-m" / "link.ld").read_text()
    assert ours[ours.index("MEMORY\n"):] == theirs[theirs.index("MEMORY\n"):]
