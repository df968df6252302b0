// one-to-one.mjs: edge-echo's loader for one-to-one.wasm (the C source one-to-one.c compiled for wasm32; its sha256 is in the manifest).
export const STEPS = 1, FEATURES = 1, OUTPUTS = 1, Y_SIZE = 1;
export async function load(source = new URL("./one-to-one.wasm", import.meta.url)) {
  if (typeof source === "string" || source instanceof URL) {
    const url = new URL(source, import.meta.url);
    source = url.protocol === "file:"
      ? await (await import("node:fs/promises")).readFile(url)
      : await (await fetch(url)).arrayBuffer();
  }
  const made = await WebAssembly.instantiate(source);
  const e = (made.instance || made).exports, m = e.memory.buffer;
  const put = (v, a) => {
    if (a.length !== v.length) throw new RangeError(`takes ${v.length} values, got ${a.length}`);
    v.set(a);
  };
  const x = new Float32Array(m, e.x(), STEPS * FEATURES);
  const y = new Float32Array(m, e.y(), Y_SIZE);
  return {
    predict(a) { put(x, a); e.predict(); return y.slice(); },
    reset() { e.reset(); },
    step(a) { put(x.subarray(0, FEATURES), a); e.step(); return y.slice(0, OUTPUTS); },
  };
}
