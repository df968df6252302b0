"""The ORT format (ONNX Runtime Mobile's .ort), rewritten in one canonical byte layout.

ONNX Runtime writes an .ort file (session.save_model_format = ORT) whose
content is fixed by the model, but whose flatbuffer layout follows heap
addresses and an address-seeded hash: the same model gives other bytes from
one process to the next. An export must be byte-reproducible, so the file is
read back and written again here, every table, vector and string in the
order the schema lists them, by one deterministic builder. The content,
and so what ONNX Runtime loads, is unchanged: a test reads both and compares
them field by field.

The schema is read from the reader classes the pinned onnxruntime wheel
ships (onnxruntime/tools/ort_format_model/ort_flatbuffers_py/fbs: the
flatc output of ORT's own ort.fbs), so it is the schema of the ORT version
that wrote the file. A pattern this reader does not know is an error, never
a silently dropped field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

FILE_IDENTIFIER = b"ORTM"
ROOT = "InferenceSession"
# The schema's one union, TypeInfo.value: its type codes (enum TypeInfoValue) and tables, as
# ort.fbs declares them. Checked against the wheel's enum when the schema is read.
UNIONS = {"TypeInfoValue": {1: ("tensor_type", "TensorTypeAndShape"),
                            2: ("sequence_type", "SequenceType"), 3: ("map_type", "MapType")}}
# Raw tensor data is aligned for a runtime that maps initializers from the file's bytes
# (session.use_ort_model_bytes_for_initializers).
BYTES_ALIGNMENT = 16


class FormatError(Exception):
    """The file or the wheel's schema is not what this reader knows; one line."""


@dataclass(frozen=True)
class Field:
    name: str
    slot: int
    kind: str       # scalar | string | table | struct | union | vector
    of: str = ""    # scalar: its flatbuffers type (Int32...); table/struct: its class;
                    # vector: the element's kind:type (scalar:Uint8, string, table:Node, struct:EdgeEnd)


@dataclass(frozen=True)
class Table:
    name: str
    fields: tuple[Field, ...]
    slots: int


@dataclass(frozen=True)
class Struct:
    name: str
    size: int
    alignment: int


_METHOD = re.compile(r"    # (\w+)\n    def (\w+)\(self(?:, j)?\):[^\n]*\n((?:        [^\n]*\n|\n)*)")
_OFFSET = re.compile(r"self\._tab\.Offset\((\d+)\)")
_FLAGS = r"flatbuffers\.number_types\.(\w+)Flags"
_IMPORT = re.compile(r"from ort_flatbuffers_py\.fbs\.(\w+) import")


def _package():
    return resources.files("onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs")


def _field(name: str, body: str) -> Field | None:
    """The field a reader method reads, or None for the helpers (Length, IsNone, AsNumpy)."""
    offset = _OFFSET.search(body)
    if not offset or "GetVectorAsNumpy" in body or "VectorLen" in body:
        return None  # the Length, IsNone and AsNumpy helpers
    slot = (int(offset.group(1)) - 4) // 2
    imported = _IMPORT.search(body)
    if "self._tab.Vector(o)" in body:
        if re.search(r"return self\._tab\.String\(a \+", body):
            return Field(name, slot, "vector", "string")
        scalar = re.search(rf"return self\._tab\.Get\({_FLAGS}, a \+", body)
        if scalar:
            return Field(name, slot, "vector", f"scalar:{scalar.group(1)}")
        if imported and "self._tab.Indirect(x)" in body:
            return Field(name, slot, "vector", f"table:{imported.group(1)}")
        if imported:
            return Field(name, slot, "vector", f"struct:{imported.group(1)}")
        return None
    if "self._tab.Union(" in body:
        return Field(name, slot, "union")
    if re.search(r"return self\._tab\.String\(o \+ self\._tab\.Pos\)", body):
        return Field(name, slot, "string")
    scalar = re.search(rf"return (?:bool\()?self\._tab\.Get\({_FLAGS}, o \+ self\._tab\.Pos\)", body)
    if scalar:
        return Field(name, slot, "scalar", scalar.group(1))
    if imported and "self._tab.Indirect(o + self._tab.Pos)" in body:
        return Field(name, slot, "table", imported.group(1))
    if imported and "x = o + self._tab.Pos" in body:
        return Field(name, slot, "struct", imported.group(1))
    if re.fullmatch(r"\s*o = [^\n]*\n\s*return o == 0\s*", body):
        return None  # IsNone
    raise FormatError(f"ORT schema: {name} reads a field in a way this writer does not know")


@cache
def schema() -> dict[str, Table | Struct]:
    """Every table and struct of the ORT format, from the wheel's generated readers."""
    found: dict[str, Table | Struct] = {}
    for entry in sorted(_package().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".py") or entry.name == "__init__.py":
            continue
        name, source = entry.name[:-3], entry.read_text()
        if f"class {name}(object)" not in source:
            continue
        size = re.search(r"def SizeOf\(cls\):\n\s*return (\d+)", source)
        if size:
            align = re.search(r"builder\.Prep\((\d+), \d+\)", source)
            found[name] = Struct(name, int(size.group(1)), int(align.group(1)) if align else 4)
            continue
        start = re.search(rf"def {name}Start\(builder\):\n\s*builder\.StartObject\((\d+)\)", source)
        if not start:
            if re.search(r"^    \w+ = \d+$", source, re.M):
                continue  # an enum
            raise FormatError(f"ORT schema: {entry.name} is neither a table, a struct nor an enum")
        fields = []
        for method in _METHOD.finditer(source):
            if method.group(1) != name:
                continue
            got = _field(method.group(2), method.group(3))
            if got is not None:
                fields.append(got)
        slots = sorted(f.slot for f in fields)
        if len(set(slots)) != len(slots) or (slots and slots[-1] >= int(start.group(1))):
            raise FormatError(f"ORT schema: the fields of {name} do not fit its {start.group(1)} slots")
        found[name] = Table(name, tuple(sorted(fields, key=lambda f: f.slot)), int(start.group(1)))
    for union, members in UNIONS.items():
        enum = (_package() / f"{union}.py").read_text()
        values = dict(re.findall(r"^    (\w+) = (\d+)$", enum, re.M))
        if {k: int(v) for k, v in values.items() if v != "0"} != {n: c for c, (n, _) in members.items()}:
            raise FormatError(f"ORT schema: union {union} is not the one this writer knows")
    if ROOT not in found:
        raise FormatError(f"ORT schema: no {ROOT} table")
    return found


def _union_tables() -> dict[int, str]:
    return {code: table for code, (_, table) in UNIONS["TypeInfoValue"].items()}


def canonical(data: bytes) -> bytes:
    """The same ORT-format model in the canonical layout: children before parents, in schema
    order, strings shared by content, vtables shared as the builder finds them."""
    import flatbuffers
    from flatbuffers import number_types as N
    from flatbuffers.table import Table as FbTable

    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise FormatError("not an ORT format file (no ORTM identifier)")
    tables = schema()
    builder = flatbuffers.Builder(max(1024, len(data)))
    unions = _union_tables()
    buf = bytearray(data)

    def flags(name: str):
        return getattr(N, f"{name}Flags")

    def string(value: bytes) -> int:
        return builder.CreateSharedString(value)

    def write_table(kind: str, tab: FbTable) -> int:
        spec = tables[kind]
        if not isinstance(spec, Table):
            raise FormatError(f"ORT schema: {kind} is not a table")
        made: dict[int, int] = {}
        union_type: dict[int, int] = {}
        for f in spec.fields:
            o = tab.Offset(4 + 2 * f.slot)
            if not o:
                continue
            if f.kind == "string":
                made[f.slot] = string(tab.String(o + tab.Pos))
            elif f.kind == "table":
                made[f.slot] = write_table(f.of, FbTable(buf, tab.Indirect(o + tab.Pos)))
            elif f.kind == "union":
                code = union_type.get(f.slot - 1)
                if code not in unions:
                    raise FormatError(f"{kind}.{f.name}: union type {code} is not known")
                inner = FbTable(bytearray(), 0)
                tab.Union(inner, o)
                made[f.slot] = write_table(unions[code], FbTable(buf, inner.Pos))
            elif f.kind == "vector":
                made[f.slot] = write_vector(f, tab, o)
            elif f.kind == "scalar" and f.of == "Uint8":
                union_type[f.slot] = tab.Get(N.Uint8Flags, o + tab.Pos)
        builder.StartObject(spec.slots)
        for f in spec.fields:
            o = tab.Offset(4 + 2 * f.slot)
            if not o:
                continue
            if f.kind == "scalar":
                value = tab.Get(flags(f.of), o + tab.Pos)
                getattr(builder, f"Prepend{f.of}Slot")(f.slot, value, None)
            elif f.kind == "struct":
                st = tables[f.of]
                builder.Prep(st.alignment, st.size)
                start = o + tab.Pos
                builder.head -= st.size
                builder.Bytes[builder.head:builder.head + st.size] = buf[start:start + st.size]
                builder.Slot(f.slot)
            else:
                builder.PrependUOffsetTRelativeSlot(f.slot, made[f.slot], 0)
        return builder.EndObject()

    def write_vector(f: Field, tab: FbTable, o: int) -> int:
        n, start = tab.VectorLen(o), tab.Vector(o)
        element, _, of = f.of.partition(":")
        if element == "string":
            items = [string(tab.String(start + 4 * j)) for j in range(n)]
            return offsets(items)
        if element == "table":
            items = [write_table(of, FbTable(buf, tab.Indirect(start + 4 * j))) for j in range(n)]
            return offsets(items)
        size = tables[of].size if element == "struct" else flags(of).bytewidth
        align = tables[of].alignment if element == "struct" else size
        if element == "scalar" and size == 1:
            align = BYTES_ALIGNMENT
        raw = buf[start:start + n * size]
        builder.StartVector(size, n, align)
        builder.head -= len(raw)
        builder.Bytes[builder.head:builder.head + len(raw)] = raw
        return builder.EndVector()

    def offsets(items: list[int]) -> int:
        builder.StartVector(4, len(items), 4)
        for item in reversed(items):
            builder.PrependUOffsetTRelative(item)
        return builder.EndVector()

    try:
        root = FbTable(buf, int.from_bytes(data[:4], "little"))
        builder.Finish(write_table(ROOT, root), file_identifier=FILE_IDENTIFIER)
    except FormatError:
        raise
    except Exception as exc:  # an offset out of the buffer: a damaged file
        raise FormatError(f"not a readable ORT format file ({type(exc).__name__}: {exc})") from None
    return bytes(builder.Output())


def content(data: bytes):
    """The file's content as nested Python values (tables as dicts by field name, in schema
    order): what two layouts of one model share. For tests and for comparing files."""
    from flatbuffers import number_types as N
    from flatbuffers.table import Table as FbTable

    tables, unions, buf = schema(), _union_tables(), bytearray(data)

    def read(kind: str, tab: FbTable) -> dict:
        out, types = {}, {}
        for f in tables[kind].fields:
            o = tab.Offset(4 + 2 * f.slot)
            if not o:
                continue
            if f.kind == "scalar":
                out[f.name] = tab.Get(getattr(N, f"{f.of}Flags"), o + tab.Pos)
                types[f.slot] = out[f.name]
            elif f.kind == "string":
                out[f.name] = tab.String(o + tab.Pos)
            elif f.kind == "table":
                out[f.name] = read(f.of, FbTable(buf, tab.Indirect(o + tab.Pos)))
            elif f.kind == "struct":
                out[f.name] = bytes(buf[o + tab.Pos:o + tab.Pos + tables[f.of].size])
            elif f.kind == "union":
                inner = FbTable(bytearray(), 0)
                tab.Union(inner, o)
                out[f.name] = read(unions[types[f.slot - 1]], FbTable(buf, inner.Pos))
            else:
                n, start = tab.VectorLen(o), tab.Vector(o)
                element, _, of = f.of.partition(":")
                if element == "string":
                    out[f.name] = [tab.String(start + 4 * j) for j in range(n)]
                elif element == "table":
                    out[f.name] = [read(of, FbTable(buf, tab.Indirect(start + 4 * j))) for j in range(n)]
                else:
                    size = tables[of].size if element == "struct" else getattr(N, f"{of}Flags").bytewidth
                    out[f.name] = bytes(buf[start:start + n * size])
        return out

    return read(ROOT, FbTable(buf, int.from_bytes(data[:4], "little")))
