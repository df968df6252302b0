"""Tolerance semantics, per-output comparison and the echo check.

An element passes if |actual - expected| <= atol + rtol * |expected|
(numpy.isclose's rule, as Polygraphy and Optimum state it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import UsageError


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float

    def __post_init__(self):
        for name in ("atol", "rtol"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise UsageError(f"--{name} must be a finite number >= 0, got {value}")


# float32 defaults: a few ulps of accumulated rounding over a short LSTM.
DEFAULT_TOLERANCE = Tolerance(atol=1e-5, rtol=1e-4)


@dataclass
class Comparison:
    output: str
    passed: bool
    max_abs: float
    max_rel: float
    worst_index: tuple[int, ...]
    worst_actual: float
    worst_expected: float
    # The smallest atol that would have let every element pass at this rtol.
    min_atol: float
    elements: int
    error: str | None = None
    # max |diff| / (atol + rtol * |expected|) over the elements: how much of the allowed error
    # the worst element used (pass <= 1). Unlike max_rel it means something where expected ~ 0.
    used: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def compare(output: str, actual: np.ndarray, expected: np.ndarray, tol: Tolerance) -> Comparison:
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return Comparison(output, False, float("inf"), float("inf"), (), float("nan"),
                          float("nan"), float("inf"), int(expected.size),
                          error=f"shape {list(actual.shape)} != expected {list(expected.shape)}",
                          used=float("inf"))
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    diff = np.abs(a - e)
    finite = np.isfinite(a)
    # NaN or inf from a runtime is always a failure, never a quiet NaN comparison.
    diff = np.where(finite, diff, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(e))
    excess = diff - tol.rtol * np.abs(e)
    allowed = tol.atol + tol.rtol * np.abs(e)
    with np.errstate(divide="ignore", invalid="ignore"):
        used = np.where(diff == 0, 0.0, diff / allowed)
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.size else ()
    min_atol = float(max(0.0, excess.max())) if excess.size else 0.0
    passed = bool(np.all(diff <= tol.atol + tol.rtol * np.abs(e)))
    return Comparison(
        output=output,
        passed=passed,
        max_abs=float(diff.max()) if diff.size else 0.0,
        max_rel=float(rel.max()) if rel.size else 0.0,
        worst_index=tuple(int(i) for i in worst),
        worst_actual=float(a[worst]) if excess.size else float("nan"),
        worst_expected=float(e[worst]) if excess.size else float("nan"),
        min_atol=min_atol,
        elements=int(e.size),
        used=float(used.max()) if used.size else 0.0,
    )


@dataclass
class EchoCheck:
    passed: bool
    printed: list[str]
    expected: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def echo_check(prediction: np.ndarray, sequence: np.ndarray) -> EchoCheck:
    """The notebook's check: the prediction printed as '%.1f' reads back the sequence.

    Rounded values are compared as numbers, so -0.0 (a prediction just below
    zero) equals 0.0. Where the sequence value is itself a tie of that
    rounding (0.25 and 0.75 at length 128), a prediction a float's error away
    prints either neighbour, and either is accepted; nothing else is.
    """
    # + 0.0 turns the -0.0 that rounding leaves of a value just below zero into 0.0.
    pred = np.round(np.asarray(prediction, dtype=np.float64).ravel(), 1) + 0.0
    seq = np.asarray(sequence, dtype=np.float64).ravel()
    want = np.round(seq, 1) + 0.0
    passed = pred.shape == want.shape
    if passed:
        scaled = seq * 10
        tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
        either = (pred == np.floor(scaled) / 10 + 0.0) | (pred == np.ceil(scaled) / 10 + 0.0)
        passed = bool(np.all((pred == want) | (tie & either)))
    return EchoCheck(passed, [f"{v:.1f}" for v in pred], [f"{v:.1f}" for v in want])


# verify's top-1 rule for probability outputs (issue 23): agreement with Keras on the stored
# reference inputs at or above this passes.
TOP1_PASS = 0.99


def top1(output: str, actual: np.ndarray, expected: np.ndarray, kind: str, atol: float) -> dict:
    """How often the runtime picks Keras's class: softmax, the largest probability over the last
    axis; sigmoid, each probability against 0.5. A pick counts as the same where Keras itself
    cannot tell the two apart within the tolerance (its top class beats the runtime's pick by no
    more than atol, or its probability is within atol of 0.5): near-ties are a coin toss."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if kind == "softmax":
        e2, a2 = e.reshape(-1, e.shape[-1]), a.reshape(-1, a.shape[-1])
        pick = a2.argmax(axis=1)
        rows = np.arange(len(e2))
        same = (pick == e2.argmax(axis=1)) | (e2[rows, pick] >= e2.max(axis=1) - atol)
    else:
        same = ((a > 0.5) == (e > 0.5)) | (np.abs(e - 0.5) <= atol)
    same = np.ravel(same)
    agreement = float(same.mean()) if same.size else 1.0
    return {"output": output, "kind": kind, "agreement": agreement, "decisions": int(same.size),
            "disagreements": int((~same).sum()), "required": TOP1_PASS,
            "passed": agreement >= TOP1_PASS}
