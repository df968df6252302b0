"""The README's variant table, generated from a verify run rather than typed by hand."""

from __future__ import annotations

import re
from pathlib import Path

START, END = "<!-- variant-table:start -->", "<!-- variant-table:end -->"


def variant_rows(report, doc: dict) -> list[dict]:
    rows = []
    for r in report.results:
        art = next(a for a in doc["models"][r.model]["artifacts"].values() if a["file"] == r.file)
        form = " ".join(w for w, on in (("micro", "micro" in art), ("step", "step" in art)) if on)
        if art["format"] == "c":  # one .c file, run whole (c) and step by step (c-step)
            form = "step" if r.runtime == "c-step" else ""
        rows.append({
            "model": r.model, "runtime": r.runtime.split(":")[0], "format": art["format"],
            "form": form or "full",
            "variant": art.get("variant", "float32"), "file": r.file, "bytes": art["size"],
            "p50_us": r.p50_us, "max_abs": r.max_abs, "atol": r.tolerance.atol,
            "echo": bool(r.echo and r.echo.passed), "passed": r.passed,
        })
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | runtime | format | form | variant | bytes | p50 µs | max abs err vs Keras | "
             "atol | echo | verify |", "|---|---|---|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        p50 = "-" if r["p50_us"] is None else f"{r['p50_us']:.1f}"
        lines.append(
            f"| {r['model']} | {r['runtime']} | {r['format']} | {r['form']} | {r['variant']} | "
            f"{r['bytes']:,} | {p50} | {r['max_abs']:.2e} | {r['atol']:.1e} | "
            f"{'pass' if r['echo'] else 'FAIL'} | {'pass' if r['passed'] else 'FAIL'} |")
    return "\n".join(lines) + "\n"


def replace_in(readme: Path, table: str, note: str) -> None:
    text = readme.read_text(encoding="utf-8")
    block = f"{START}\n{note}\n\n{table}{END}"
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text, encoding="utf-8")
