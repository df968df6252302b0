"""Integer C (NAME.int8.c / NAME.int8.h): the step models of plan.py in exact integer arithmetic
(the whole-sequence ones are int8seq.py's, from the same layers here).

int8 weights, each output row with its own scale; int16 activations and state; int32 sums;
requantization by an integer multiplier and shift (EE_RQ); sigmoid and tanh from a 257-sample
table interpolated, softmax's e^-d as 2^-d from a 33-sample one. Float appears only at the
edges (NAME_int8_step and NAME_int8_predict quantize x and scale y), which -DEE_NO_FLOAT
compiles out, leaving the integer entry points NAME_int8_step_q and NAME_int8_predict_q.

How each tensor is scaled (real = integer x scale):
- the input: per feature, max |x| over the calibration sequences x 1.25, over 32767;
- a gate's or a candidate's pre-activation (sigmoid, tanh): Q3.12 (1/4096; saturates at 8,
  where both functions are flat to within a Q15 step or two);
- sigmoid and tanh outputs, an LSTM or GRU's h: Q15 (1/32768);
- an LSTM's c: 2^(p - 15), the smallest power of two p >= 0 with 2^p >= 2 max |c|, so that the
  cell update is shifts;
- what a linear or relu layer gives (a SimpleRNN's h, a Dense output): 2 max |v| / 32767,
  per unit for the model's output;
- a weight row: its largest |w x input scale| over 127, rounded up to where the row's
  multiplier (one byte, its scale over the output's x 2^shift) is exact, or a few steps
  coarser where its weights round closer there (_multipliers).
The ranges come from the float model run over the calibration sequences (plan.py's weights,
BatchNormalization folded into the next layer's weights). The scales sit in the header; the
ranges and the scheme in the manifest.

The emitter is int8emit.py; the C helpers it copies are templates/int8.c, a C file of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from ...forms import Subject, Unavailable
from .cmath import ACTIVATIONS, template_parts
from .plan import Cell, Dense, Norm, Plan, plan

TEMPLATE = Path(__file__).with_name("templates") / "int8.c"
Q12, Q15 = 1.0 / 4096, 1.0 / 32768
INPUT_MARGIN, MARGIN = 1.25, 2.0
BOUNDED = ("sigmoid", "tanh")        # through a table: pre-activation Q3.12, output Q15
SCALED = ("linear", "relu")          # the same scale in and out
# Any other element-wise activation of the float C (elu, gelu, softplus, ...): a 257-entry table
# of its own over the pre-activation's calibrated int16 range, interpolated as sigmoid's is.
TABLED = tuple(a for a in ACTIVATIONS if a not in (*BOUNDED, *SCALED))
SCHEME = ("int8 weights (per output row scale), int16 activations and state, int32 sums; "
          "requantization by integer multiplier and shift; sigmoid and tanh from a 257-entry Q15 "
          "table, softmax's exp as 2^-x from a 33-entry one, interpolated; no float arithmetic "
          "between the float edges")


@cache
def parts() -> dict[str, str]:
    """templates/int8.c's parts by name."""
    return {name: body for name, (_, body) in template_parts(TEMPLATE).items()}


def _pad4(n: int) -> int:
    return -(-n // 4) * 4


@dataclass
class Op:
    """One matrix-vector product in the file: rows over a padded int16 vector."""
    words: np.ndarray      # uint32, blocked as ee_mv reads them
    bias: np.ndarray       # int16 per row: its bias (with half a step for rounding) / 2^bias_shift
    mult: np.ndarray       # one byte per row (1 ... 255): the row's scale over the output's x 2^shift
    shift: int
    groups: int
    rows: int
    # A second segment with its own finer weights (_op): its groups, and each segment's shift.
    groups2: int = 0
    shifts: tuple[int, int] = (0, 0)
    # The biases' scale: a row's sum starts from bias x 2^bias_shift (int16 biases, not int32:
    # two bytes a row of flash; at most half of 2^bias_shift from the exact bias, which is
    # below an output step unless the bias is thousands of output steps).
    bias_shift: int = 0


@dataclass
class ICell:
    kind: str
    name: str
    units: int
    activation: str
    off: int               # where its input segment starts in the state's v (its h at off + nxp)
    nxp: int
    nhp: int
    ops: dict = field(default_factory=dict)     # name -> Op
    c_power: int = 0       # LSTM: c's scale is 2^(c_power - 15)
    h_scale: float = Q15
    pre_scale: float = 0.0                  # a TABLED activation's input scale
    table: np.ndarray | None = None         # and its samples (_table)


@dataclass
class IDense:
    name: str
    units: int
    activation: str
    op: Op | None = None
    out_scale: np.ndarray | None = None   # per unit
    softmax: tuple[int, int] | None = None  # (multiplier, shift) of d into Q4.11
    table: np.ndarray | None = None         # a TABLED activation's samples (_table)


@dataclass
class IPlan:
    source: Plan
    cells: list[ICell]
    head: list[IDense]
    x_scale: np.ndarray
    y_scale: np.ndarray
    ranges: dict
    nxp: int

    @property
    def state_size(self) -> int:
        """int16 values of the state's v: the input, then each layer's h, each padded to 4."""
        return self.nxp + sum(c.nhp for c in self.cells)

    @property
    def state_bytes(self) -> int:
        return 2 * (self.state_size + sum(c.units for c in self.cells if c.kind == "lstm"))


def cell_weights(c: Cell) -> list[np.ndarray]:
    """[kernel, recurrent, bias] in float64, a zero bias where the layer has none."""
    kernel, recurrent, *rest = [np.asarray(w, np.float64) for w in c.weights]
    gates = kernel.shape[1]
    if rest and c.use_bias:
        bias = rest[0].copy()
    elif c.kind == "gru" and c.reset_after:
        bias = np.zeros((2, gates))
    else:
        bias = np.zeros(gates)
    return [kernel, recurrent, bias]


def _folded(p: Plan) -> tuple[list[tuple[Cell, list[np.ndarray]]], list[Dense]]:
    """The plan with each BatchNormalization folded into the weights of the layer after it (or,
    at the end of the head, the linear Dense before it); cells as (cell, [kernel, recurrent,
    bias]). Anything else that normalizes has no integer form here."""
    cells = []
    for c in p.cells:
        kernel, recurrent, bias = cell_weights(c)
        for n in reversed(c.pre):
            a, b = _affine(n)
            shift = b @ kernel
            kernel = a[:, None] * kernel
            if bias.ndim == 2:
                bias[0] += shift
            else:
                bias = bias + shift
        cells.append((c, [kernel, recurrent, bias]))
    head: list[Dense] = []
    pending: list[Norm] = []
    for d in p.head:
        if isinstance(d, Norm):
            pending.append(d)
            continue
        kernel = np.asarray(d.kernel, np.float64)
        bias = np.zeros(d.units) if d.bias is None else np.asarray(d.bias, np.float64)
        for n in reversed(pending):
            a, b = _affine(n)
            bias = bias + b @ kernel
            kernel = a[:, None] * kernel
        pending = []
        head.append(Dense(d.name, d.inputs, d.units, kernel, bias, d.activation))
    for n in pending:
        a, b = _affine(n)
        if not head or head[-1].activation != "linear":
            raise Unavailable(f"layer '{n.name}': a BatchNormalization after the last layer folds "
                              "into a linear Dense before it, and there is none")
        last = head[-1]
        last.kernel = last.kernel * a[None, :]
        last.bias = last.bias * a + b
    return cells, head


def _affine(n: Norm) -> tuple[np.ndarray, np.ndarray]:
    if n.kind != "batch":
        what = "LayerNormalization" if n.kind == "layer" else "RMS normalization"
        raise Unavailable(f"layer '{n.name}': {what} "
                          "has no integer C form here (it divides by each step's spread); "
                          "BatchNormalization folds into the weights")
    a = np.ones(n.width) if n.a is None else np.asarray(n.a, np.float64)
    b = np.zeros(n.width) if n.b is None else np.asarray(n.b, np.float64)
    return a, b


def check_cell(c: Cell) -> None:
    """An LSTM or GRU's integer form is Keras's default: sigmoid gates and tanh."""
    if c.kind in ("lstm", "gru") and (c.recurrent_activation, c.activation) != ("sigmoid", "tanh"):
        raise Unavailable(f"layer '{c.name}': integer C takes {c.kind.upper()} with sigmoid "
                          f"gates and tanh, not {c.recurrent_activation} and {c.activation}")


def _check_activations(p: Plan) -> None:
    for c in p.cells:
        check_cell(c)
    for k, d in enumerate(p.head):
        last = k == len(p.head) - 1 or all(isinstance(n, Norm) for n in p.head[k + 1:])
        if isinstance(d, Dense) and (d.activation == "log_softmax"
                                     or (d.activation == "softmax" and not last)):
                raise Unavailable(f"layer '{d.name}': {d.activation} has no integer C form here "
                                  "(softmax as the last layer)")


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _act(name: str, v):
    basic = {"sigmoid": _sigmoid, "tanh": np.tanh, "linear": lambda a: a,
             "relu": lambda a: np.maximum(a, 0.0)}
    if name in basic:
        return basic[name](v)
    import keras

    f = keras.activations.get(name)
    return np.asarray(keras.ops.convert_to_numpy(f(np.asarray(v, np.float32))), np.float64)


def _table(name: str, scale: float) -> tuple[np.ndarray, float]:
    """activation(z) at z = (-32768 + 256 i) x scale, i = 0 ... 256 (ee_lut's samples over an
    int16 pre-activation of that scale), as int16 at the output scale it returns (its largest
    |value| there over 32767)."""
    z = (-32768.0 + 256.0 * np.arange(257)) * scale
    f = _act(name, z)
    if not np.all(np.isfinite(f)):
        raise Unavailable(f"activation '{name}' overflows over its calibrated range")
    out = max(float(np.abs(f).max()), 1e-6) / 32767.0
    return np.clip(np.round(f / out), -32767, 32767).astype(np.int64), out


def run_cell(c: Cell, weights: list[np.ndarray], seq: np.ndarray, backwards: bool = False,
             mask: np.ndarray | None = None, init: dict | None = None,
             final: dict | None = None) -> tuple[np.ndarray, dict]:
    """The float layer over seq (n, steps, inputs), reading it backwards if asked and keeping
    its state over the steps mask (n, steps) marks 0, from the state init ({"h", "c"}) or
    zeros: its h at each step, in the order read (n, steps, units), and the ranges its integer
    scales follow; its last state into final, where given."""
    kernel, recurrent, bias = weights
    n, steps, _ = seq.shape
    u = c.units
    h = np.zeros((n, u)) if init is None else init["h"]
    cs = np.zeros((n, u)) if init is None or "c" not in init else init["c"]
    outs = []
    cmax = hmax = zmax = 0.0
    for t in (range(steps - 1, -1, -1) if backwards else range(steps)):
        xt = seq[:, t]
        h_was, c_was = h, cs
        if c.kind == "lstm":
            z = xt @ kernel + h @ recurrent + bias
            i, f, g, o = (z[:, j * u:(j + 1) * u] for j in range(4))
            cs = _sigmoid(f) * cs + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(cs)
            cmax = max(cmax, float(np.abs(cs).max()))
        elif c.kind == "gru":
            if c.reset_after:
                mx, mh = xt @ kernel + bias[0], h @ recurrent + bias[1]
                zg = _sigmoid(mx[:, :u] + mh[:, :u])
                rg = _sigmoid(mx[:, u:2 * u] + mh[:, u:2 * u])
                cand = np.tanh(mx[:, 2 * u:] + rg * mh[:, 2 * u:])
            else:
                mx = xt @ kernel + bias
                zg = _sigmoid(mx[:, :u] + h @ recurrent[:, :u])
                rg = _sigmoid(mx[:, u:2 * u] + h @ recurrent[:, u:2 * u])
                cand = np.tanh(mx[:, 2 * u:] + (rg * h) @ recurrent[:, 2 * u:])
            h = zg * h + (1 - zg) * cand
        else:
            z = xt @ kernel + h @ recurrent + bias
            zmax = max(zmax, float(np.abs(z).max()))
            h = _act(c.activation, z)
            hmax = max(hmax, float(np.abs(h).max()))
        if mask is not None:
            keep = mask[:, t:t + 1] == 0
            h, cs = np.where(keep, h_was, h), np.where(keep, c_was, cs)
        outs.append(h)
    ranges = ({"c": cmax} if c.kind == "lstm" else {"h": hmax, "pre": zmax}
              if c.kind == "rnn" else {})
    if final is not None:
        final.update({"h": h, "c": cs})
    return np.stack(outs, axis=1), ranges


def dense_range(d: Dense, v: np.ndarray) -> tuple[np.ndarray, dict]:
    """The float Dense layer over v (..., inputs): its output and its pre-activation's range."""
    z = v @ d.kernel + d.bias
    return (z if d.activation == "softmax" else _act(d.activation, z)), \
        {"pre": np.abs(z.reshape(-1, d.units)).max(axis=0)}


def _forward(cells, head, x: np.ndarray) -> dict:
    """The float model over x (n, steps, features): max |value| of what the integer scales
    follow (each LSTM's c, each linear or relu layer's output, the softmax logits)."""
    ranges: dict = {}
    seq = np.asarray(x, np.float64)
    for c, weights in cells:
        seq, ranges[c.name] = run_cell(c, weights, seq)
    v = seq.reshape(-1, seq.shape[-1])
    for d in head:
        v, ranges[d.name] = dense_range(d, v)
    return ranges


def _op(label: str, segments: list[tuple[np.ndarray, np.ndarray, int]], bias: np.ndarray,
        out_scale: np.ndarray, halved: np.ndarray | None = None) -> Op:
    """Rows over the concatenated segments, each (weights (n, rows), the input's scale per
    value, its padded length), quantized: int8 weights per row, the multiplier and shift that
    turn a row's sum into out_scale, the bias (plus half a step) in the sum's units.

    A row's scale is its largest |weight x input scale| over 127. Where one segment's
    contributions are far smaller than the other's (an input of range 1000 beside an h of
    range 1: its h weights would round to 0 or 1), that segment's weights are stored 2^k finer
    and its sum shifted right by k before the two are added: the sum loses one step at most,
    not each weight its bits. k is per segment, the same for every row (ee_mv's k1, k2).
    halved: 1 for the rows the C requantizes at shift + 1 (an LSTM's sigmoid gates, ee_lstm),
    whose half step is twice the others'."""
    rows = segments[0][0].shape[1]
    parts = []
    for weights, scales, padded in segments:
        part = np.zeros((padded, rows))
        part[:weights.shape[0]] = weights * np.asarray(scales, np.float64).reshape(-1, 1)
        parts.append(part)
    amax = np.max([np.abs(part).max(axis=0) for part in parts], axis=0)
    out = np.broadcast_to(np.asarray(out_scale, np.float64), (rows,))
    # Each row's multiplier is one byte, exact: the row's scale is rounded up to mult x out /
    # 2^shift (mult below 2^8) and its weights quantized at that scale, so the requantization
    # adds no error, and a row costs a byte, not two. An all-zero row takes the largest scale
    # (its bias then needs no coarser bias_shift than the others'); all-zero weights, the output's.
    m = amax / 127.0 / out
    top = float(m.max()) if float(m.max()) > 0 else 1.0
    m = np.where(amax > 0, m, top)
    shift = int(min(30, np.floor(np.log2(255.0 / top))))
    if shift < 0:
        raise Unavailable(f"{label}: its outputs' scale is too fine for its inputs' (a "
                          "multiplier above 2^8)")
    shifts = []
    for part in parts:
        seg = np.abs(part).max(axis=0)
        used = seg > 0
        shifts.append(int(np.clip(np.floor(np.log2((amax[used] / seg[used]).min())), 0, 15))
                      if len(parts) > 1 and used.any() else 0)
    mult = _multipliers(parts, shifts, m * 2.0 ** shift, out / 2.0 ** shift)
    sw = mult * out / 2.0 ** shift
    qs = [_quantized(part, sw / 2.0 ** k) for part, k in zip(parts, shifts, strict=True)]
    if not any(shifts):  # one sum over the whole vector
        shifts, qs = [0], [np.concatenate(qs)]
    up = np.zeros(rows) if halved is None else np.asarray(halved, np.float64)
    half = np.where(shift + up > 0, np.round(2.0 ** (shift - 1 + up) / mult), 0)
    b = np.round(np.asarray(bias, np.float64) / sw) + half
    bias_shift = 0
    while np.abs(np.round(b / 2.0 ** bias_shift)).max(initial=0) > 32767:
        bias_shift += 1
    b = np.round(b / 2.0 ** bias_shift)
    sums = [np.abs(q).sum(axis=0) * 32768 for q in qs]
    total = sum(s / 2 ** k for s, k in zip(sums, shifts, strict=True)) + np.abs(b) * 2.0 ** bias_shift
    if max(float(s.max()) for s in sums) >= 2 ** 31 or total.max() >= 2 ** 31:
        raise Unavailable(f"{label}: a row's integer sum could pass 2^31 "
                          f"({sum(q.shape[0] for q in qs)} inputs); no integer form here")
    groups = [q.shape[0] // 4 for q in qs]
    return Op(_blocked(qs), b.astype(np.int64), mult, shift, groups[0], rows,
              groups[1] if len(qs) > 1 else 0, tuple(shifts) + (0,) * (2 - len(shifts)), bias_shift)


def _quantized(part: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """int8 weights of part (inputs, rows) at a scale per row."""
    return np.clip(np.round(part / scale), -127, 127).astype(np.int64)


def _multipliers(parts: list[np.ndarray], shifts: list[int], least: np.ndarray,
                 unit: np.ndarray) -> np.ndarray:
    """Each row's one-byte multiplier, its weights' scale in units of unit (the output's scale
    over 2^shift): the smallest integer at or above least (the smallest that holds the row's
    weights), or up to 8 steps above where that rounds the row's weights (times their inputs'
    scales; segment k at 2^k finer) closer. A row of a few weights can otherwise lose a few
    percent to rounding that all goes one way (the echo models' five-weight head did)."""
    low = np.clip(np.ceil(least * (1 - 1e-12)), 1, 255)
    best, mult = np.full(low.shape, np.inf), low.copy()
    for step in range(9):
        cand = np.minimum(low + step, 255)
        err = np.zeros(low.shape)
        for part, k in zip(parts, shifts, strict=True):
            scale = cand * unit / 2.0 ** k
            err = err + ((_quantized(part, scale) * scale - part) ** 2).sum(axis=0)
        better = err < best * (1 - 1e-9)
        best, mult = np.where(better, err, best), np.where(better, cand, mult)
    return mult.astype(np.int64)


def _blocked(qs: list[np.ndarray]) -> np.ndarray:
    """int8 weights (inputs, rows) of each segment as ee_mv reads them: rows in pairs (a zero
    row after an odd last one), two pairs at a time while four rows remain, then pair by pair;
    for each such block, each segment's groups in turn, and in a group each pair's word for
    inputs 0, 1 of the group, then 2, 3; each word two 16-bit lanes, one per input, holding
    256 a + b (a the pair's first row's weight, b its second's), the first input's low."""
    rows = qs[0].shape[1]
    lanes = []
    for q in qs:
        if rows % 2:
            q = np.concatenate([q, np.zeros((q.shape[0], 1), q.dtype)], axis=1)
        lanes.append((256 * q[:, 0::2] + q[:, 1::2]) & 0xFFFF)   # (inputs, pairs)
    pairs = lanes[0].shape[1]
    # As ee_mv goes: two pairs while four rows remain, then one pair at a time.
    blocks = [(2 * k, 2 * k + 1) for k in range(rows // 4)]
    blocks += [(pr,) for pr in range(2 * (rows // 4), pairs)]
    words = []
    for block in blocks:
        for lane in lanes:
            for g in range(lane.shape[0] // 4):
                for pr in block:
                    for k in (4 * g, 4 * g + 2):
                        words.append(int(lane[k, pr]) | (int(lane[k + 1, pr]) << 16))
    return np.asarray(words, np.uint64)


def make_icell(c: Cell, weights: list[np.ndarray], in_scale: np.ndarray, width: int, r: dict,
               off: int = 0) -> ICell:
    """A recurrent layer as integers: its scales from its ranges (r, run_cell's), its rows
    quantized over [x_t (width values at in_scale), h] (off: where x_t starts in the state)."""
    kernel, recurrent, bias = weights
    u = c.units
    nx, nh = _pad4(width), _pad4(u)
    ic = ICell(c.kind, c.name, u, c.activation, off, nx, nh)
    if c.kind == "rnn" and c.activation in SCALED:
        ic.h_scale = max(r["h"], 1e-6) * MARGIN / 32767.0
    elif c.kind == "rnn" and c.activation in TABLED:
        ic.pre_scale = max(r["pre"], 1e-6) * MARGIN / 32767.0
        ic.table, ic.h_scale = _table(c.activation, ic.pre_scale)
    h_scales = np.full(u, ic.h_scale)
    xs = (kernel, in_scale, nx)
    if c.kind == "lstm":
        cmax = max(r["c"], 1e-6) * MARGIN
        ic.c_power = int(min(15, max(0, np.ceil(np.log2(cmax)))))
        # Unit by unit: the i, f, c, o rows of unit j side by side (ee_lstm).
        order = np.arange(4 * u).reshape(4, u).T.ravel()
        ic.ops["k"] = _op(f"layer '{c.name}'", [(kernel[:, order], in_scale, nx),
                                               (recurrent[:, order], h_scales, nh)],
                          bias[order], Q12, halved=np.tile([1, 1, 0, 1], u))
    elif c.kind == "rnn":
        out = Q12 if c.activation in BOUNDED else ic.pre_scale or ic.h_scale
        ic.ops["k"] = _op(f"layer '{c.name}'", [xs, (recurrent, h_scales, nh)], bias, out)
    elif c.reset_after:
        zr = slice(0, 2 * u)
        ic.ops["zr"] = _op(f"layer '{c.name}'", [(kernel[:, zr], in_scale, nx),
                                                (recurrent[:, zr], h_scales, nh)],
                           bias[0, zr] + bias[1, zr], Q12)
        ic.ops["hx"] = _op(f"layer '{c.name}'", [(kernel[:, 2 * u:], in_scale, nx)],
                           bias[0, 2 * u:], Q12)
        ic.ops["hh"] = _op(f"layer '{c.name}'", [(recurrent[:, 2 * u:], h_scales, nh)],
                           bias[1, 2 * u:], Q12)
    else:
        zr = slice(0, 2 * u)
        ic.ops["zr"] = _op(f"layer '{c.name}'", [(kernel[:, zr], in_scale, nx),
                                                (recurrent[:, zr], h_scales, nh)], bias[zr], Q12)
        ic.ops["kh"] = _op(f"layer '{c.name}'", [(kernel[:, 2 * u:], in_scale, nx),
                                                (recurrent[:, 2 * u:], h_scales, nh)],
                           bias[2 * u:], Q12)
    return ic


def make_idense(d: Dense, pre, last: bool, in_scale: np.ndarray, width: int) -> IDense:
    """A Dense layer as integers over width values at in_scale: its output scale per unit (its
    own for the model's output, one for the layer otherwise) from its pre-activation's range."""
    pre = np.asarray(pre, np.float64)
    idn = IDense(d.name, d.units, d.activation)
    if d.activation in BOUNDED:
        out, idn.out_scale = Q12, np.full(d.units, Q15)
    elif d.activation in TABLED:  # one scale for the layer, in and out: one table
        out = max(float(pre.max()), 1e-6) * MARGIN / 32767.0
        idn.table, scale = _table(d.activation, out)
        idn.out_scale = np.full(d.units, scale)
    elif d.activation == "softmax":
        logit = max(float(pre.max()), 1e-6) * MARGIN / 32767.0
        out, idn.out_scale = np.full(d.units, logit), np.full(d.units, Q15)
        # d = (max - z) log2(e) (up to twice the logits' range) into Q4.11: ee_softmax's 2^-d.
        m = logit * 2048.0 / np.log(2.0)
        shift = int(min(62, np.floor(np.log2(32767.0 / m))))
        idn.softmax = (int(round(m * 2.0 ** shift)), shift)
    else:
        spread = np.maximum(pre, 1e-6) if last else np.full(d.units, max(float(pre.max()), 1e-6))
        out = spread * MARGIN / 32767.0
        idn.out_scale = out
    idn.op = _op(f"layer '{d.name}'", [(d.kernel, in_scale, _pad4(width))], d.bias, out)
    return idn


def int8_plan(subject: Subject):
    """The model as integer cells and a head with their scales (IPlan), or as whole-sequence
    layers (int8seq.SeqIPlan) where the C computes it whole, or why not, in one line."""
    if "c_int8" in subject.cache:
        return subject.cache["c_int8"]
    try:
        p = plan(subject)
    except Unavailable:
        # Computed a whole sequence at a time in C (int8seq.py), or why the C has no form.
        from .int8seq import seq_int8_plan

        whole = seq_int8_plan(subject)
        subject.cache["c_int8"] = whole
        return whole
    _check_activations(p)
    cells, head = _folded(p)
    x = calibration(subject, subject.interface.input_name)
    ranges = _forward(cells, head, x)
    xmax = np.abs(x).max(axis=(0, 1))
    x_scale = np.where(xmax > 0, xmax * INPUT_MARGIN, 1.0) / 32767.0
    nxp = _pad4(p.features)
    icells: list[ICell] = []
    off, in_scale, width = 0, x_scale, p.features
    for c, weights in cells:
        ic = make_icell(c, weights, in_scale, width, ranges[c.name], off)
        icells.append(ic)
        off += ic.nxp
        in_scale, width = np.full(c.units, ic.h_scale), c.units
    ihead: list[IDense] = []
    for k, d in enumerate(head):
        idn = make_idense(d, ranges[d.name]["pre"], k == len(head) - 1, in_scale, width)
        ihead.append(idn)
        in_scale, width = idn.out_scale, d.units
    y_scale = ihead[-1].out_scale if ihead else np.full(icells[-1].units, icells[-1].h_scale)
    recorded = {"input_max_abs": [float(v) for v in xmax]}
    for c in icells:
        r = ranges[c.name]
        if c.kind == "lstm":
            recorded[c.name] = {"c_max_abs": r["c"], "c_scale": f"2^{c.c_power - 15}"}
        elif c.kind == "rnn" and c.activation not in BOUNDED:
            recorded[c.name] = {"h_max_abs": r["h"], "h_scale": c.h_scale}
    for d in ihead:
        recorded[d.name] = {"pre_activation_max_abs": [float(v) for v in ranges[d.name]["pre"]]}
    ip = IPlan(p, icells, ihead, x_scale, np.asarray(y_scale, np.float64), recorded, nxp)
    subject.cache["c_int8"] = ip
    return ip


def calibration(subject: Subject, name: str) -> np.ndarray:
    """One input's sequences the ranges are taken over: the int8 calibration set's and the
    reference inputs', as float64 (n, steps, features), or int64 token ids (n, steps)."""
    spec = next(i for i in subject.interface.inputs if i.name == name)
    cal, ref = subject.calibration, subject.reference_x
    arrays = [cal[name] if isinstance(cal, dict) else cal]
    if isinstance(ref, dict) and name in ref:
        arrays.append(ref[name])
    elif isinstance(ref, np.ndarray) and len(subject.interface.inputs) == 1:
        arrays.append(ref)
    if spec.integer:
        return np.concatenate([np.asarray(a).reshape(-1, spec.shape[0]) for a in arrays]
                              ).astype(np.int64)
    x = np.concatenate([np.asarray(a, np.float64).reshape(-1, *spec.shape) for a in arrays])
    if not np.all(np.isfinite(x)):
        raise Unavailable("the calibration sequences hold inf or NaN")
    return x
