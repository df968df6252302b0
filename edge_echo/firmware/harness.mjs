// harness.mjs: edge-echo's verify harness for a model's NAME.wasm in Node, through its own
// loader NAME.mjs, reading and writing the files harness.c does (in.bin, out.bin).
//   node harness.mjs NAME.mjs in.bin out.bin LAYOUT           verify: every sequence
//   node harness.mjs NAME.mjs one.bin - LAYOUT RUNS WARMUP    bench: predict on one sequence
// LAYOUT is "steps" (predict, then reset and step per time step), or "whole:f5,i10" for a
// whole-sequence model: its inputs in order, f (float32) or i (int32 ids) and their sizes.
// Time is process.hrtime; nothing counts instructions here, so out.bin's counters are 0.
import { readFileSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const [loaderPath, inPath, outPath, layout, runs, warmup] = process.argv.slice(2);
// Whatever fails (a module Node will not compile, a loader that throws) is one line.
process.on("uncaughtException", (err) => {
  process.stderr.write(`edge-echo harness: ${err.name}: ${err.message}\n`);
  process.exit(2);
});
const loader = await import(pathToFileURL(loaderPath).href);
const model = await loader.load();
const raw = readFileSync(inPath);
const words = new Uint32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);

let inputs, size, ySize;
if (layout.startsWith("whole:")) {
  inputs = layout.slice(6).split(",").map((s) => ({ int: s[0] === "i", n: Number(s.slice(1)) }));
  size = inputs.reduce((a, i) => a + i.n, 0);
  ySize = loader.Y_SIZE;
} else {
  size = loader.STEPS * loader.FEATURES;
  ySize = loader.Y_SIZE;
}

function split(seq) {  // one sequence's words as the loader takes them
  if (!inputs) return [new Float32Array(seq.buffer, seq.byteOffset, seq.length)];
  let at = 0;
  return inputs.map((i) => {
    const part = seq.subarray(at, at + i.n);
    at += i.n;
    return i.int ? new Int32Array(part.buffer, part.byteOffset, i.n)
      : new Float32Array(part.buffer, part.byteOffset, i.n);
  });
}

if (outPath === "-") {  // bench: the bare predict call on a prepared input
  const args = split(words.slice(0, size));
  for (let i = 0; i < Number(warmup); i++) model.predict(...args);
  const times = new Float64Array(Number(runs));
  for (let i = 0; i < times.length; i++) {
    const t0 = process.hrtime.bigint();
    model.predict(...args);
    times[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  times.sort();
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  process.stdout.write(JSON.stringify({ runs: times.length, p50_us: at(0.5), p99_us: at(0.99) }));
  process.exit(0);
}

if (words[0] !== 0x4e494545) throw new Error("in.bin is not an edge-echo input");
const count = words[1];
const modes = inputs ? 1 : 2;
const per = ySize + 2;
const out = new Uint32Array(4 + modes * count * per);
const outF = new Float32Array(out.buffer);
out.set([0x554f4545, count, 0, 0]);
for (let mode = 0; mode < modes; mode++) {
  for (let s = 0; s < count; s++) {
    const seq = words.slice(2 + s * size, 2 + (s + 1) * size);
    const at = 4 + (mode * count + s) * per;
    if (mode === 0) {
      try {
        outF.set(model.predict(...split(seq)), at);
      } catch (err) {
        if (!(err instanceof RangeError) || !inputs) throw err;
        out[at + ySize + 1] = 0xffffffff;  // predict's status: a token id outside the vocabulary
      }
    } else {
      const x = split(seq)[0];
      model.reset();
      for (let t = 0; t < loader.STEPS; t++) {
        const yt = model.step(x.subarray(t * loader.FEATURES, (t + 1) * loader.FEATURES));
        outF.set(yt, at + (ySize === loader.OUTPUTS ? 0 : t * loader.OUTPUTS));
      }
    }
  }
}
writeFileSync(outPath, new Uint8Array(out.buffer));
