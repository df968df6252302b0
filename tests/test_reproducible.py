"""Issue 5: the same seed and versions give the same bytes, and unchanged models are not retrained."""

import re
import subprocess
import sys

import pytest
from conftest import BLOCK_TF, FULL_OPTIONS, read_manifest, run_module, tree_digest

from edge_echo.export import export
from edge_echo.specs import DEFAULT_SEED, MODEL_NAMES

# Weight reuse and retraining do not depend on which files are written: the fast ones.
FAST = ("tflite", "onnx")


def test_two_exports_are_byte_identical(full_export, tmp_path):
    """Every form, quantized variant and C array, trained again in a fresh directory."""
    again = tmp_path / "again"
    result = export(again, list(MODEL_NAMES), seed=DEFAULT_SEED, **FULL_OPTIONS)
    assert not any(m.reused for m in result.models)  # a fresh directory has nothing to reuse
    assert tree_digest(again) == tree_digest(full_export[0])


def test_unchanged_models_reuse_their_weights(exported, full_export):
    """full_export is the session export exported again into a copy of itself."""
    out, result = full_export
    assert [m.reused for m in result.models] == [True] * len(MODEL_NAMES)
    assert all(m.train_seconds == 0.0 for m in result.models)
    again = tree_digest(out)
    assert {k: v for k, v in tree_digest(exported).items() if k != "manifest.json"
            and k != "README.md"}.items() <= again.items()


def test_retrain_and_changed_specs_train_again(export_copy):
    before = tree_digest(export_copy)
    forced = export(export_copy, ["many-to-one"], seed=DEFAULT_SEED, retrain=True, forms=FAST)
    assert not forced.models[0].reused
    assert tree_digest(export_copy)["many-to-one.onnx"] == before["many-to-one.onnx"]
    changed = export(export_copy, ["many-to-one"], seed=DEFAULT_SEED, epochs=7, forms=FAST)
    assert not changed.models[0].reused
    assert read_manifest(export_copy)["models"]["many-to-one"]["spec"]["epochs"] == 7


def test_altered_weights_are_not_reused(export_copy):
    keras_file = export_copy / "many-to-one.keras"
    data = bytearray(keras_file.read_bytes())
    data[-100] ^= 0xFF
    keras_file.write_bytes(bytes(data))
    result = export(export_copy, ["many-to-one"], seed=DEFAULT_SEED, forms=FAST)
    assert not result.models[0].reused


def test_cli_says_which_models_were_reused(export_copy, cli):
    result = cli("export", "--out", export_copy, "--models", "one-to-one", "--forms", "onnx")
    assert result.exit_code == 0
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("one-to-one"))
    assert "reused" in row


@pytest.mark.parametrize("command", [[], ["export"], ["verify"], ["bench"]])
def test_help_imports_no_tensorflow(command):
    result = run_module(*command, "--help", prelude=BLOCK_TF)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert "tensorflow imported: False" in result.stdout


def test_help_does_not_even_load_tensorflow_modules():
    code = ("import sys\nfrom edge_echo.cli import app\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras', 'tf2onnx', 'onnx', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["export", "convert", "verify", "bench", "predict", "stream",
                                     "table"])
def test_help_shows_conventional_metavars(cli, command, monkeypatch):
    """MODELS, N, FILE rather than Python types, and nothing on flags (issue 13)."""
    monkeypatch.setenv("COLUMNS", "160")
    result = cli(command, "--help")
    assert result.exit_code == 0
    options = [line for line in result.stdout.splitlines()
               if line.lstrip("│ ").startswith("--") or re.match(r"│ +[A-Z]+ ", line)]
    assert any("--help" in line for line in options) and len(options) > 1
    assert "{" not in next(line for line in result.stdout.splitlines() if "Usage:" in line)
    # <bool>, <int>, <list[str]>, <path>, ... (a range such as [0<=x<=12] is fine).
    assert not [line for line in options if re.search(r"<[a-z]", line)], options
