"""Issues 6 and 12: C arrays of the micro forms for TensorFlow Lite Micro compile, hold the
.tflite bytes and declare the arena measured on TFLM."""

import shutil
import subprocess

import pytest
from conftest import read_manifest

from edge_echo.embed import resolver_method
from edge_echo.manifest import check_integrity

MICRO = ("tflite_micro", "tflite_micro_int8", "tflite_micro_step")


@pytest.fixture
def with_c_arrays(full_export):
    return full_export[0]


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")
def test_c_arrays_declare_the_arena_and_hold_the_bytes(with_c_arrays, tmp_path):
    from edge_echo.embed import symbol_for

    doc = read_manifest(with_c_arrays)
    check_integrity(with_c_arrays, doc)
    arts = doc["models"]["many-to-many"]["artifacts"]
    c_kinds = {k for k in arts if k.endswith(("_c_header", "_c_source"))}
    assert c_kinds == {f"{k}_c_{part}" for k in MICRO for part in ("header", "source")}
    tflite = arts["tflite_micro_step"]["file"]
    symbol = symbol_for(tflite)
    header = (with_c_arrays / f"{symbol}.h").read_text()
    arena = arts["tflite_micro_step"]["micro"]["arena_bytes"]
    assert f"#define {symbol.upper()}_ARENA_SIZE {arena}\n" in header
    assert "resolver.AddUnidirectionalSequenceLSTM();" in header and "Reset()" in header
    (tmp_path / "main.cc").write_text(
        f'#include <cstdio>\n#include "{symbol}.h"\n'
        f"static_assert({symbol.upper()}_ARENA_SIZE % 256 == 0, \"arena\");\n"
        f"int main() {{ return std::fwrite({symbol}, 1, {symbol}_len, stdout) == {symbol}_len"
        " ? 0 : 1; }\n")
    binary = tmp_path / "dump"
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-I", str(with_c_arrays),
                    str(tmp_path / "main.cc"), str(with_c_arrays / f"{symbol}.cc"), "-o",
                    str(binary)], check=True, capture_output=True)
    dumped = subprocess.run([str(binary)], check=True, capture_output=True).stdout
    assert dumped == (with_c_arrays / tflite).read_bytes()


def test_resolver_method_names():
    assert resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert resolver_method("BATCH_MATMUL") == "AddBatchMatMul"
    assert resolver_method("UNIDIRECTIONAL_SEQUENCE_LSTM") == "AddUnidirectionalSequenceLSTM"
