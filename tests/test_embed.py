"""Issue 6: C arrays for TensorFlow Lite Micro compile and hold the .tflite bytes."""

import shutil
import subprocess

import pytest
from conftest import read_manifest

from edge_echo.embed import resolver_method, symbol_for
from edge_echo.export import export
from edge_echo.manifest import check_integrity
from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES

MAIN = """
#include <cstdio>
#include "{header}"
int main() {{
  if (reinterpret_cast<unsigned long>({symbol}) % 16 != 0) return 3;
  return std::fwrite({symbol}, 1, {symbol}_len, stdout) == {symbol}_len ? 0 : 1;
}}
"""


@pytest.fixture(scope="module")
def with_c_arrays(exported, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "exported"
    shutil.copytree(exported, out)
    export(out, list(MODEL_NAMES), seed=DEFAULT_SEED, c_array=True)  # reuses the weights
    return out


def test_manifest_lists_and_hashes_the_c_files(with_c_arrays):
    doc = read_manifest(with_c_arrays)
    check_integrity(with_c_arrays, doc)
    arts = doc["models"]["many-to-one"]["artifacts"]
    assert arts["tflite_c_source"]["file"] == "many_to_one_model_data.cc"
    assert arts["tflite_step_c_header"]["file"] == "many_to_one_step_model_data.h"


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler")
@pytest.mark.parametrize("tflite", ["many-to-one.tflite", "one-to-one.step.tflite"])
def test_c_array_compiles_to_the_same_bytes(with_c_arrays, tmp_path, tflite):
    symbol = symbol_for(tflite)
    (tmp_path / "main.cc").write_text(MAIN.format(header=f"{symbol}.h", symbol=symbol))
    binary = tmp_path / "dump"
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-I", str(with_c_arrays),
                    str(tmp_path / "main.cc"), str(with_c_arrays / f"{symbol}.cc"), "-o", str(binary)],
                   check=True, capture_output=True)
    dumped = subprocess.run([str(binary)], check=True, capture_output=True).stdout
    assert dumped == (with_c_arrays / tflite).read_bytes()


def test_comment_lists_the_resolver_calls(with_c_arrays):
    doc = read_manifest(with_c_arrays)
    ops = doc["models"]["many-to-many"]["artifacts"]["tflite"]["operators"]
    text = (with_c_arrays / "many_to_many_model_data.cc").read_text()
    assert f"MicroMutableOpResolver<{len(ops)}>" in text
    for op in ops:
        assert f"resolver.{resolver_method(op)}();" in text
    assert resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert resolver_method("BATCH_MATMUL") == "AddBatchMatMul"
