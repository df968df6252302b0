"""Issue 6: predict and stream, the TensorFlow-free commands a device developer runs."""

import subprocess

import pytest
from conftest import BLOCK_TF, run_module

ECHO = ["0.0", "0.2", "0.4", "0.6", "0.8"]


@pytest.mark.parametrize("suffix", ["onnx", "tflite"])
@pytest.mark.parametrize("name", ["many-to-one", "many-to-many", "one-to-one"])
def test_predict_echoes(exported, cli, name, suffix):
    result = cli("predict", exported / f"{name}.{suffix}", *ECHO, "--decimals", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ECHO


@pytest.mark.parametrize("suffix", ["onnx", "tflite"])
def test_stream_echoes_one_value_per_line(exported, suffix):
    lines = "\n".join(ECHO) + "\n\n" + "\n".join(ECHO[:2]) + "\n"
    result = subprocess.run(
        [*run_module_args(), "stream", str(exported / f"many-to-many.step.{suffix}"),
         "--decimals", "1"], input=lines, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    # The blank line started a new sequence, so the echo starts again.
    assert result.stdout.split() == ECHO + ECHO[:2]


def run_module_args():
    import sys

    return [sys.executable, "-m", "edge_echo"]


def test_stream_many_to_one_ends_with_the_sequence(exported, cli):
    result = subprocess.run([*run_module_args(), "stream", str(exported / "many-to-one.step.tflite"),
                             "--decimals", "1"], input="\n".join(ECHO) + "\n",
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stdout.strip().splitlines()[-1].split() == ECHO


def test_device_commands_import_no_tensorflow(exported):
    result = run_module("predict", exported / "many-to-one.onnx", *ECHO, prelude=BLOCK_TF)
    assert result.returncode == 0, result.stderr
    assert "tensorflow imported: False" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["many-to-one.onnx", "1", "2", "3"], "takes 5 value(s)"),
    (["many-to-one.onnx", "0", "0.2", "x", "0.6", "0.8"], "'x' is not a number"),
    (["many-to-one.tflite", "0", "0.2", "nan", "0.6", "0.8"], "not finite"),
    (["many-to-one.tflite", "0", "0.2", "inf", "0.6", "0.8"], "not finite"),
    (["many-to-one.step.onnx", *ECHO], "use `edge-echo stream`"),
    (["manifest.json", *ECHO], "expected a .onnx, .ort or .tflite"),
    (["missing.onnx", *ECHO], "no such file"),
])
def test_predict_refuses_bad_input(exported, cli, args, message):
    result = cli("predict", exported / args[0], *args[1:])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("file, text, message", [
    ("many-to-many.onnx", "0.1\n", "not a step model"),
    ("many-to-many.step.onnx", "0.1\nabc\n", "line 2: value 'abc' is not a number"),
    ("many-to-many.step.tflite", "0.1 0.2\n", "each step takes 1 value(s)"),
])
def test_stream_refuses_bad_input(exported, file, text, message):
    result = subprocess.run([*run_module_args(), "stream", str(exported / file)], input=text,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_predict_takes_negative_values(exported, cli):
    result = cli("predict", exported / "many-to-one.onnx", "-0.1", "-0.2", "0.4", "0.6", "0.8")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split()) == 5
