"""Issue 8: property tests for what users type and what manifests hold."""

import json
import math
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_echo import manifest
from edge_echo.device import parse_line, parse_number
from edge_echo.errors import ArtifactError, UsageError


@given(st.text())
def test_any_text_is_a_finite_number_or_a_usage_error(text):
    try:
        value = parse_number(text)
    except UsageError as exc:
        assert repr(text) in str(exc)
    else:
        assert math.isfinite(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip(value):
    assert parse_number(repr(value)) == value
    assert parse_line(f" {value!r}, {value!r} ", 1) == [value, value]


@given(st.text())
def test_stream_lines_parse_or_name_the_line(text):
    try:
        values = parse_line(text, 7)
    except UsageError as exc:
        assert str(exc).startswith("line 7: value ")
    else:
        assert all(math.isfinite(v) for v in values)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10),
                                                                      children, max_size=4),
    max_leaves=12,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


@pytest.fixture(scope="module")
def valid(exported, tmp_path_factory):
    d = tmp_path_factory.mktemp("props") / "export"
    shutil.copytree(exported, d)
    doc = json.loads((d / "manifest.json").read_text())
    return d, doc, list(_paths(doc))


@settings(max_examples=1000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_manifest_is_an_artifact_error_never_a_crash(valid, data):
    d, doc, paths = valid
    damaged = json.loads(json.dumps(doc))
    path = data.draw(st.sampled_from(paths[1:]))
    parent = damaged
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON)
    (d / "manifest.json").write_text(json.dumps(damaged))
    try:
        loaded = manifest.load(d)
        manifest.check_integrity(d, loaded)
    except ArtifactError as exc:
        assert "\n" not in str(exc)
    finally:
        (d / "manifest.json").write_text(json.dumps(doc))
